package locker_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ispec-dev/ispec/builder"
	"github.com/ispec-dev/ispec/cache"
	"github.com/ispec-dev/ispec/locker"
	"github.com/ispec-dev/ispec/pylock"
	"github.com/ispec-dev/ispec/spec"
)

// fakeBase answers every base with one digest per platform, or err.
type fakeBase struct {
	digest string
	err    error
}

func (f fakeBase) ResolvePlatforms(_ context.Context, ref name.Reference, plats []v1.Platform) (cache.Resolved, error) {
	if f.err != nil {
		return cache.Resolved{}, f.err
	}
	res := cache.Resolved{Ref: ref.Name(), Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat(f.digest, 64)}}
	for _, p := range plats {
		res.Platforms = append(res.Platforms, cache.PlatformDigest{Platform: p, Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("b", 64)}})
	}
	return res, nil
}

// fakePython resolves to its pins, recording what it was asked.
type fakePython struct {
	pins  []pylock.Pin
	asked []builder.ResolveOptions
}

func (f *fakePython) ResolvePython(_ context.Context, _ *spec.Image, opts builder.ResolveOptions) ([]pylock.Pin, error) {
	f.asked = append(f.asked, opts)
	return f.pins, nil
}

func load(t *testing.T, body string) *spec.Image {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "spec.yaml")
	if err := os.WriteFile(p, []byte("name: lk\nregistry: registry.lan/x\nbase_image: registry.lan/base:1\n"+body), 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := spec.Load(context.Background(), p, spec.Options{IgnoreLock: true})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func pin(n, v string) pylock.Pin {
	return pylock.Pin{Name: n, Version: v, File: n + "-" + v + "-py3-none-any.whl", URL: "http://pypi.lan/" + n, SHA256: strings.Repeat("c", 64)}
}

func TestLockPinsTheBaseAndResolvesPythonOnIt(t *testing.T) {
	py := &fakePython{pins: []pylock.Pin{pin("core", "1.0"), pin("util", "1.0")}}
	l, err := locker.New(fakeBase{digest: "a"}, locker.WithPython(py), locker.WithPipNetrc([]byte("machine pypi.lan")))
	if err != nil {
		t.Fatal(err)
	}
	img := load(t, "packages: [core]\n")
	old, err := l.Lock(context.Background(), img, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if old.BaseImage == nil || old.BaseImage.Platforms["linux/amd64"] != "sha256:"+strings.Repeat("b", 64) {
		t.Fatalf("base pin %+v", old.BaseImage)
	}
	if len(py.asked) != 1 || py.asked[0].Base != "registry.lan/base@sha256:"+strings.Repeat("b", 64) || string(py.asked[0].PipNetrc) != "machine pypi.lan" || py.asked[0].Constraints != nil {
		t.Fatalf("resolved with %+v; want the pinned base, the netrc, no constraints", py.asked)
	}
	if d := locker.Drift(old, old); len(d) != 0 {
		t.Errorf("a lock drifts from itself: %v", d)
	}

	// util moves upstream: --upgrade-package util keeps core's pin.
	py.pins = []pylock.Pin{pin("core", "1.0"), pin("util", "1.1")}
	drift, err := l.Check(context.Background(), img, old, nil)
	if err != nil || strings.Join(drift, "\n") != "python (linux/amd64): util 1.0 locked, 1.1 available" {
		t.Errorf("Check: %q, %v", drift, err)
	}
	if _, err := l.Lock(context.Background(), img, old, []string{"Util"}); err != nil {
		t.Fatal(err)
	}
	if got := string(py.asked[len(py.asked)-1].Constraints); got != "core==1.0\n" {
		t.Errorf("--upgrade-package util: constraints %q, want core kept", got)
	}
	data, err := locker.Pylock(old)
	if err != nil || !strings.Contains(string(data), "util") {
		t.Errorf("Pylock: %s, %v", data, err)
	}
}

func TestLockErrorsAreClassified(t *testing.T) {
	absent := &cache.AbsentError{Ref: "registry.lan/base:1"}
	img := load(t, "packages: [core]\n")
	plain := load(t, "")
	for _, tc := range []struct {
		name    string
		l       func() (*locker.Locker, error)
		img     *spec.Image
		old     *spec.Lock
		upgrade []string
		invalid bool
		want    string
	}{
		{"a base the registry does not have", func() (*locker.Locker, error) { return locker.New(fakeBase{err: absent}) }, plain, nil, nil, true, "base_image"},
		{"a registry that cannot answer", func() (*locker.Locker, error) { return locker.New(fakeBase{err: errors.New("dial tcp: refused")}) }, plain, nil, nil, false, "resolving base image"},
		{"--upgrade-package without Python", func() (*locker.Locker, error) { return locker.New(fakeBase{digest: "a"}) }, plain, nil, []string{"x"}, true, "no Python packages"},
		{"--upgrade-package without pins", func() (*locker.Locker, error) {
			return locker.New(fakeBase{digest: "a"}, locker.WithPython(&fakePython{}))
		}, img, &spec.Lock{}, []string{"core"}, true, "pins no Python packages yet"},
		{"no Python resolver", func() (*locker.Locker, error) { return locker.New(fakeBase{digest: "a"}) }, img, nil, nil, false, "no Python resolver"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := tc.l()
			if err != nil {
				t.Fatal(err)
			}
			_, err = l.Lock(context.Background(), tc.img, tc.old, tc.upgrade)
			if err == nil || !strings.Contains(err.Error(), tc.want) || errors.Is(err, spec.ErrInvalid) != tc.invalid {
				t.Errorf("Lock: %v; want an error saying %q, invalid %v", err, tc.want, tc.invalid)
			}
		})
	}
	l, _ := locker.New(fakeBase{digest: "a"})
	if _, err := l.Check(context.Background(), plain, nil, nil); !errors.Is(err, spec.ErrInvalid) || !strings.Contains(err.Error(), "no lock file to check") {
		t.Errorf("Check without a lock: %v", err)
	}
	if _, err := locker.Pylock(&spec.Lock{}); !errors.Is(err, spec.ErrInvalid) {
		t.Errorf("Pylock without Python pins: %v", err)
	}
}

func TestDriftNamesTheBaseAndTheParent(t *testing.T) {
	old := &spec.Lock{BaseImage: &spec.LockedImage{Ref: "b:1", Digest: "sha256:1", Platforms: map[string]string{"linux/amd64": "sha256:2"}}}
	fresh := &spec.Lock{BaseImage: &spec.LockedImage{Ref: "b:1", Digest: "sha256:3", Platforms: map[string]string{"linux/amd64": "sha256:4", "linux/arm64": "sha256:5"}}}
	want := []string{
		"base_image b:1: sha256:1 moved to sha256:3",
		"base_image b:1 (linux/amd64): sha256:2 moved to sha256:4",
		"base_image b:1 (linux/arm64): (absent) moved to sha256:5",
	}
	if got := locker.Drift(old, fresh); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Drift:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	parent := &spec.Lock{Parent: &spec.LockedParent{Spec: "base.yaml", Ref: "r/base:2"}}
	if got := locker.Drift(&spec.Lock{Parent: &spec.LockedParent{Spec: "base.yaml", Ref: "r/base:1"}}, parent); len(got) != 1 || got[0] != "parent base.yaml: r/base:1 is now r/base:2" {
		t.Errorf("parent drift %q", got)
	}
}

func TestNestedSpecLocksOnlyWhatItAdds(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	parentFile := write("base.yaml", "name: lk-base\nregistry: registry.lan/x\nbase_image: registry.lan/base:1\npackages: [core]\n")
	childFile := write("child.yaml", "name: lk\nregistry: registry.lan/x\nbase_image: {spec: ./base.yaml}\npackages: [extra]\n")
	ctx := context.Background()

	py := &fakePython{pins: []pylock.Pin{pin("core", "1.0"), pin("util", "1.0")}}
	l, err := locker.New(fakeBase{digest: "a"}, locker.WithPython(py))
	if err != nil {
		t.Fatal(err)
	}
	parent, err := spec.Load(ctx, parentFile, spec.Options{IgnoreLock: true})
	if err != nil {
		t.Fatal(err)
	}
	pl, err := l.Lock(ctx, parent, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	data, err := spec.EncodeLock(pl)
	if err != nil {
		t.Fatal(err)
	}
	write(filepath.Base(spec.LockPath(parentFile)), string(data))

	// The child's resolution sees the parent's environment (pip keeps it
	// as constraints) and adds extra; the index has a newer util, which
	// the constraint holds back.
	py.pins = []pylock.Pin{pin("core", "1.0"), pin("util", "1.0"), pin("extra", "2.0")}
	child, err := spec.Load(ctx, childFile, spec.Options{IgnoreLock: true})
	if err != nil {
		t.Fatal(err)
	}
	cl, err := l.Lock(ctx, child, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	asked := py.asked[len(py.asked)-1]
	if got := string(asked.Constraints); got != "core==1.0\nutil==1.0\n" {
		t.Errorf("child resolved with constraints %q, want the parent's pins", got)
	}
	if asked.Base != child.Parent.Identity.Ref {
		t.Errorf("child resolved on %q, want the parent's image %q", asked.Base, child.Parent.Identity.Ref)
	}
	var names []string
	for _, p := range cl.Python.Platforms["linux/amd64"].Pins() {
		names = append(names, p.Name+"=="+p.Version)
	}
	if strings.Join(names, ",") != "extra==2.0" {
		t.Errorf("child lock pins %v, want only what it adds (extra==2.0)", names)
	}
}

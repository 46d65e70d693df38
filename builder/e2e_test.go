package builder

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/ispec-dev/ispec/builder/progress"
	"github.com/ispec-dev/ispec/internal/imagediff"
	"github.com/ispec-dev/ispec/internal/pyindex"
	"github.com/ispec-dev/ispec/internal/testenv"
	"github.com/ispec-dev/ispec/spec"
)

// loadDevEnv returns the dev environment that `scripts/devenv.sh up`
// starts: a buildkitd, a registry with base image fixtures and a PEP 503
// index. It skips the test when the environment is not up, except in CI.
func loadDevEnv(t *testing.T) *testenv.Env {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	return testenv.Load(t)
}

func newE2EBuilder(t *testing.T, env *testenv.Env) *Builder {
	t.Helper()
	b, err := New(context.Background(), Options{Addr: env.BuildkitHost, Version: "e2e"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// e2eSpec writes a spec that exercises every step into a new folder.
func e2eSpec(env *testenv.Env, repo, pkgA string, commands []string) (string, map[string]string) {
	var cmds strings.Builder
	for _, c := range commands {
		q, _ := json.Marshal(c)
		cmds.WriteString("  - " + string(q) + "\n")
	}
	doc := fmt.Sprintf(`name: demo
registry: %s/%s
base_image: %s
apt_packages: [jq]
packages: ["ispec-demo-a==%s", "ispec-demo-b==2.0.0"]
pip_index: %s
env: {APP_MODE: e2e}
commands:
%scopy: [bin/run.sh, conf.txt]
workdir: /app
entrypoint: [/app/bin/run.sh]
`, env.Registry, repo, env.BasePython, pkgA, env.IndexURL, cmds.String())
	return doc, map[string]string{
		"bin/run.sh": "#!/bin/sh\necho run\n",
		"conf.txt":   "setting=1\n",
	}
}

// build builds img and collects its progress through a watcher.
func build(t *testing.T, b *Builder, img *spec.Image, opts ...BuildOptions) (*Result, []*progress.Status, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	prog := NewProgress()
	var events []*progress.Status
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for s := range prog.Subscribe(ctx) {
			events = append(events, s)
		}
	}()
	var o BuildOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	o.Progress = prog
	res, err := b.Build(ctx, img, o)
	wg.Wait()
	return res, events, err
}

// fileInfo is a file of an image's layers.
type fileInfo struct {
	mode  int64
	uid   int
	layer int
}

// layerFiles lists every path of every layer.
func layerFiles(t *testing.T, im v1.Image) map[string]fileInfo {
	t.Helper()
	layers, err := im.Layers()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]fileInfo{}
	for i, l := range layers {
		testenv.LayerEntries(t, l, func(name string, h *tar.Header, _ io.Reader) {
			files[name] = fileInfo{mode: h.Mode, uid: h.Uid, layer: i}
		})
	}
	return files
}

func TestE2EBuild(t *testing.T) {
	env := loadDevEnv(t)
	b := newE2EBuilder(t, env)
	repo := fmt.Sprintf("e2e-builder-%d", time.Now().UnixNano())
	dir := t.TempDir()
	doc, files := e2eSpec(env, repo, "1.0.0", []string{"echo built > /built.txt", "python -c 'import ispec_demo_a, ispec_demo_b' && jq --version"})
	img := loadSpecIn(t, dir, doc, files)

	res, events, err := build(t, b, img)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if res.Ref != img.Identity.Ref || !strings.HasPrefix(res.Digest, "sha256:") || res.Duration <= 0 {
		t.Errorf("result = %+v", res)
	}
	if len(events) == 0 {
		t.Error("the progress watcher saw no events")
	}
	t.Logf("built %s@%s in %s", res.Ref, res.Digest, res.Duration)

	im := testenv.Pull(t, res.Ref)
	if d, _ := im.Digest(); d.String() != res.Digest {
		t.Errorf("registry digest %s, result %s", d, res.Digest)
	}
	cf, err := im.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg := cf.Config
	envs := strings.Join(cfg.Env, "\n")
	for _, want := range []string{"APP_MODE=e2e", "VIRTUAL_ENV=/opt/venv", "LANG=C.UTF-8"} {
		if !strings.Contains(envs, want) {
			t.Errorf("env %q lacks %s", cfg.Env, want)
		}
	}
	if !regexp.MustCompile(`(?m)^PATH=/opt/venv/bin:`).MatchString(envs) {
		t.Errorf("env %q: the venv is not first on PATH", cfg.Env)
	}
	if strings.Join(cfg.Entrypoint, " ") != "/app/bin/run.sh" || len(cfg.Cmd) != 0 {
		t.Errorf("entrypoint %q cmd %q", cfg.Entrypoint, cfg.Cmd)
	}
	if cfg.WorkingDir != "/app" {
		t.Errorf("workdir %q", cfg.WorkingDir)
	}
	for k, v := range map[string]string{
		LabelSpecHash: img.Identity.SpecHash, LabelSpec: string(img.Document), LabelVersion: "e2e", LabelRecipe: spec.RecipeVersion,
		"org.opencontainers.image.base.name": env.BasePython, "org.opencontainers.image.created": "1970-01-01T00:00:00Z",
	} {
		if got := cfg.Labels[k]; got != v {
			t.Errorf("label %s = %q, want %q", k, got, v)
		}
	}
	if !strings.HasPrefix(cfg.Labels["org.opencontainers.image.base.digest"], "sha256:") {
		t.Errorf("base digest label = %q", cfg.Labels["org.opencontainers.image.base.digest"])
	}
	if cf.Created.Time.Unix() != 0 {
		t.Errorf("created = %v, want the epoch", cf.Created)
	}
	layers, _ := im.Layers()
	var historyLayers int
	for _, h := range cf.History {
		if !h.EmptyLayer {
			historyLayers++
		}
	}
	if historyLayers != len(layers) {
		t.Errorf("%d history entries with layers, %d layers: %+v", historyLayers, len(layers), cf.History)
	}

	fs := layerFiles(t, im)
	baseLayers, err := testenv.Pull(t, env.BasePython).Layers()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := fs["usr/bin/jq"]; !ok {
		t.Error("jq is not in the image")
	}
	var distInfo bool
	for p := range fs {
		if regexp.MustCompile(`^opt/venv/lib/python3[.0-9]*/site-packages/ispec_demo_a-1\.0\.0\.dist-info/`).MatchString(p) {
			distInfo = true
		}
		for _, bad := range []string{"var/lib/apt/lists/", "var/cache/apt/archives/", "var/log/apt/", "root/.cache/pip/", "run/ispec/"} {
			if strings.HasPrefix(p, bad) && fs[p].layer >= len(baseLayers) {
				t.Errorf("%s is in a layer", p)
			}
		}
		if strings.HasPrefix(p, "opt/venv/") && strings.Contains(p, "ispec_demo") && strings.HasSuffix(p, ".pyc") {
			t.Errorf("%s: pip compiled bytecode", p)
		}
	}
	if !distInfo {
		t.Error("ispec-demo-a 1.0.0's dist-info is not in the venv")
	}
	for p, mode := range map[string]int64{"app/bin/run.sh": 0o755, "app/conf.txt": 0o644} {
		f, ok := fs[p]
		if !ok {
			t.Errorf("%s is not in the image", p)
			continue
		}
		if f.mode&0o7777 != mode || f.uid != 1000 {
			t.Errorf("%s: mode %o uid %d, want %o 1000 (flytekit)", p, f.mode&0o7777, f.uid, mode)
		}
	}
	if _, ok := fs["built.txt"]; !ok {
		t.Error("the command's file is not in the image")
	}

	// Every step run again gives the same image, digest included.
	t.Run("rebuild without cache is identical", func(t *testing.T) {
		res2, _, err := build(t, b, img, BuildOptions{NoCache: true})
		if err != nil {
			t.Fatalf("Build: %v", err)
		}
		if res2.Digest != res.Digest {
			t.Errorf("rebuild without cache gave %s, first build %s", res2.Digest, res.Digest)
			compareLayers(t, im, testenv.Pull(t, res2.Ref+"@"+res2.Digest))
		}
	})

	// Changing one pip package reuses the base and apt layers.
	t.Run("pip change reuses apt layer", func(t *testing.T) {
		doc2, _ := e2eSpec(env, repo, "1.1.0", []string{"echo built > /built.txt", "python -c 'import ispec_demo_a, ispec_demo_b' && jq --version"})
		img2 := loadSpecIn(t, dir, doc2, files)
		res2, _, err := build(t, b, img2)
		if err != nil {
			t.Fatalf("Build: %v", err)
		}
		im2 := testenv.Pull(t, res2.Ref)
		l1, _ := im.Layers()
		l2, _ := im2.Layers()
		base, err := testenv.Pull(t, env.BasePython).Layers()
		if err != nil {
			t.Fatal(err)
		}
		apt := len(base) + 1 // the apt layer comes right after the base's and the user's
		for i := 0; i <= apt+1; i++ {
			d1, _ := l1[i].Digest()
			d2, _ := l2[i].Digest()
			if d1 != d2 {
				t.Errorf("layer %d (base %d, apt %d, venv %d) differs: %s vs %s", i, len(base)-1, apt, apt+1, d1, d2)
			}
		}
		d1, _ := l1[apt+2].Digest()
		d2, _ := l2[apt+2].Digest()
		if d1 == d2 {
			t.Error("the packages layer did not change with a package")
		}
	})
}

func TestE2EFailingCommand(t *testing.T) {
	env := loadDevEnv(t)
	b := newE2EBuilder(t, env)
	repo := fmt.Sprintf("e2e-builder-fail-%d", time.Now().UnixNano())
	doc := fmt.Sprintf("name: fails\nregistry: %s/%s\nbase_image: %s\ncommands:\n  - \"echo ok\"\n  - \"echo about to fail; echo the-detail >&2; exit 3\"\n", env.Registry, repo, env.BaseBusybox)
	img := loadSpec(t, doc, nil)

	_, _, err := build(t, b, img)
	var se *StepError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v (%T), want *StepError", err, err)
	}
	if !strings.Contains(se.Step, "commands[1]") {
		t.Errorf("step = %q, want commands[1]", se.Step)
	}
	log := strings.Join(se.Log, "\n")
	if !strings.Contains(log, "about to fail") || !strings.Contains(log, "the-detail") {
		t.Errorf("log tail %q lacks the step's output", se.Log)
	}
	if !strings.Contains(err.Error(), "exit code: 3") {
		t.Errorf("error %q lacks the exit code", err)
	}
	t.Logf("error:\n%v", err)

	r, _ := name.ParseReference(img.Identity.Ref, name.Insecure)
	_, herr := remote.Head(r)
	var terr *transport.Error
	if !errors.As(herr, &terr) || terr.StatusCode != http.StatusNotFound {
		t.Errorf("after a failed build, HEAD %s = %v, want 404", img.Identity.Ref, herr)
	}
}

// compareLayers reports where two images differ first, file by file.
func compareLayers(t *testing.T, a, b v1.Image) {
	t.Helper()
	d, err := imagediff.Compare(a, b)
	if err != nil {
		t.Errorf("comparing the images: %v", err)
		return
	}
	if d != nil {
		t.Errorf("first difference: %v", d)
	}
}

// TestE2EPipSecret: pip reads its index from a secret file (pip.conf), and
// the secret's bytes end up in no layer, config, log or the hash input.
// TestE2EPipSecret: a private index that demands basic auth is reached
// with credentials that travel only as BuildKit secrets, from the spec's
// pip_secret_mounts or from the configuration's netrc: pip installs from
// it, and the password is in no layer, config, log line, error or hash.
func TestE2EPipSecret(t *testing.T) {
	env := loadDevEnv(t)
	b := newE2EBuilder(t, env)
	password := fmt.Sprintf("ispec-secret-password-%d", time.Now().UnixNano())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: pyindex.Handler(env.IndexWheels, pyindex.WithBasicAuth("ispec", password))}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	index := "http://" + ln.Addr().String() + "/simple"
	if resp, err := http.Get(index + "/"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the private index answers %v without credentials (%v), want 401", resp, err)
	}
	withCreds := "http://ispec:" + password + "@" + ln.Addr().String() + "/simple"

	check := func(t *testing.T, img *spec.Image, res *Result, events []*progress.Status) {
		t.Helper()
		if strings.Contains(string(img.Document), password) {
			t.Error("the secret is in the hash input")
		}
		for _, s := range events {
			for _, l := range s.Logs {
				if strings.Contains(string(l.Data), password) {
					t.Errorf("the secret is in a log line: %q", l.Data)
				}
			}
		}
		im := testenv.Pull(t, res.Ref)
		raw, _ := im.RawConfigFile()
		if strings.Contains(string(raw), password) {
			t.Error("the secret is in the image config")
		}
		if strings.Contains(string(raw), img.Dir) {
			t.Error("the image config names the folder secrets are read from")
		}
		layers, _ := im.Layers()
		for i, l := range layers {
			rc, err := l.Uncompressed()
			if err != nil {
				t.Fatal(err)
			}
			dt, _ := io.ReadAll(rc)
			rc.Close()
			if strings.Contains(string(dt), password) {
				t.Errorf("the secret is in layer %d", i)
			}
		}
		if _, ok := layerFiles(t, im)["opt/venv/lib/python3.11/site-packages/ispec_demo_b-2.0.0.dist-info/METADATA"]; !ok {
			t.Error("pip did not install from the private index")
		}
	}
	specFor := func(extra string) string {
		return fmt.Sprintf("name: secret\nregistry: %s/e2e-builder-secret-%d\nbase_image: %s\npackages: [\"ispec-demo-b==2.0.0\"]\n%s",
			env.Registry, time.Now().UnixNano(), env.BasePython, extra)
	}

	t.Run("pip_secret_mounts", func(t *testing.T) {
		img := loadSpec(t, specFor("pip_secret_mounts: [{source: pip.conf, target: /etc/pip.conf}]\n"),
			map[string]string{"pip.conf": "[global]\nindex-url = " + withCreds + "\n"})
		res, events, err := build(t, b, img)
		if err != nil {
			t.Fatalf("Build: %v", err)
		}
		check(t, img, res, events)
	})
	t.Run("netrc from the configuration", func(t *testing.T) {
		img := loadSpec(t, specFor("pip_index: "+index+"\n"), nil)
		netrc := []byte("machine 127.0.0.1 login ispec password " + password + "\n")
		res, events, err := build(t, b, img, BuildOptions{PipNetrc: netrc})
		if err != nil {
			t.Fatalf("Build: %v", err)
		}
		check(t, img, res, events)
	})
	t.Run("no credentials", func(t *testing.T) {
		img := loadSpec(t, specFor("pip_index: "+index+"\n"), nil)
		_, _, err := build(t, b, img)
		var se *StepError
		if !errors.As(err, &se) || !strings.Contains(se.Step, "pip install") {
			t.Fatalf("Build without credentials = %v, want a failed pip step", err)
		}
		if strings.Contains(err.Error(), password) {
			t.Error("the secret is in the error")
		}
	})
}

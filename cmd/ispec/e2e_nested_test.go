package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ispec-dev/ispec/internal/testenv"
)

// TestNestedSpecs: two children of one parent spec, built in one call,
// build the absent parent once, and each child builds on the parent's
// exact digest. A second call builds nothing.
func TestNestedSpecs(t *testing.T) {
	env := e2e(t)
	reg := fmt.Sprintf("%s/nested-%d", env.Registry, time.Now().UnixNano())
	dir := writeFiles(t, map[string]string{
		"base.yaml": fmt.Sprintf("name: parent\nregistry: %s\nbase_image: %s\ncommands: [\"echo parent > /parent.txt\"]\n", reg, env.BaseBusybox),
		"one.yaml":  fmt.Sprintf("name: one\nregistry: %s\nbase_image: {spec: ./base.yaml}\ncommands: [\"cat /parent.txt > /one.txt\"]\n", reg),
		"two.yaml":  fmt.Sprintf("name: two\nregistry: %s\nbase_image: {spec: ./base.yaml}\ncommands: [\"cat /parent.txt > /two.txt\"]\n", reg),
	})
	spec := func(n string) string { return filepath.Join(dir, n) }
	tagOf := func(n string) string {
		out, errOut, code := run(t, "tag", spec(n))
		if code != 0 {
			t.Fatalf("ispec tag %s: exit %d: %s", n, code, errOut)
		}
		return strings.TrimSpace(out)
	}
	parentRef, oneRef, twoRef := tagOf("base.yaml"), tagOf("one.yaml"), tagOf("two.yaml")

	// The parent is named on the command line too, after its children.
	out, errOut, code := runProc(t, "build", "--json", "--progress", "plain", spec("one.yaml"), spec("two.yaml"), spec("base.yaml"))
	if code != 0 {
		t.Fatalf("build: exit %d\n%s", code, tail(errOut, 60))
	}
	results := decodeResults(t, out)
	if len(results) != 3 || results[0].Ref != oneRef || results[1].Ref != twoRef || results[2].Ref != parentRef || !results[0].Built || !results[1].Built {
		t.Fatalf("build printed %+v; want %s and %s built, then %s", results, oneRef, twoRef, parentRef)
	}
	if n := testenv.CountManifestPuts(t, env.RegistryLog, repoOf(parentRef)); n != 1 {
		t.Errorf("the registry saw %d manifest pushes for the parent %s, want 1", n, parentRef)
	}
	parent := testenv.Pull(t, parentRef)
	pd, err := parent.Digest()
	if err != nil {
		t.Fatal(err)
	}
	if results[2].Digest != pd.String() {
		t.Errorf("build printed the parent's digest %s, the registry has %s", results[2].Digest, pd)
	}
	for _, r := range results[:2] {
		child := testenv.Pull(t, r.Ref+"@"+r.Digest)
		cf, err := child.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		labels := cf.Config.Labels
		if got, want := labels["org.opencontainers.image.base.name"], parentRef+"@"+pd.String(); got != want {
			t.Errorf("%s: base.name label %q, want %q", r.Ref, got, want)
		}
		if got := labels["org.opencontainers.image.base.digest"]; got != pd.String() {
			t.Errorf("%s: base.digest label %q, want the parent's digest %s", r.Ref, got, pd)
		}
		checkLayerChain(t, r.Ref, child, parent)
	}

	// Everything exists now: nothing is built, BuildKit is not even needed.
	t.Setenv("BUILDKIT_HOST", "unix:///nonexistent/buildkitd.sock")
	out, errOut, code = runProc(t, "build", "--json", spec("one.yaml"))
	again := decodeResults(t, out)
	if code != 0 || len(again) != 1 || again[0].Built || again[0].Digest != results[0].Digest {
		t.Fatalf("second build: exit %d, %+v\n%s; want %s@%s, built false", code, again, errOut, oneRef, results[0].Digest)
	}
	// The same with a cold local index: the registry answers.
	t.Setenv("ISPEC_CACHE_DIR", t.TempDir())
	out, errOut, code = runProc(t, "build", "--json", spec("two.yaml"))
	again = decodeResults(t, out)
	if code != 0 || len(again) != 1 || again[0].Built || again[0].Digest != results[1].Digest {
		t.Fatalf("build with a cold index: exit %d, %+v\n%s; want %s@%s, built false", code, again, errOut, twoRef, results[1].Digest)
	}
	if n := testenv.CountManifestPuts(t, env.RegistryLog, repoOf(parentRef)); n != 1 {
		t.Errorf("after the second builds the registry saw %d manifest pushes for the parent, want 1", n)
	}
}

// decodeResults reads the JSON lines of `ispec build --json`.
func decodeResults(t *testing.T, out string) []buildResult {
	t.Helper()
	var rs []buildResult
	dec := json.NewDecoder(strings.NewReader(out))
	for dec.More() {
		var r buildResult
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("reading %q: %v", out, err)
		}
		rs = append(rs, r)
	}
	return rs
}

// checkLayerChain wants child's first layers to be parent's layers, and at
// least one more.
func checkLayerChain(t *testing.T, ref string, child, parent v1.Image) {
	t.Helper()
	cl, err := child.Layers()
	if err != nil {
		t.Fatal(err)
	}
	pl, err := parent.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(cl) <= len(pl) {
		t.Errorf("%s has %d layers, its parent %d; want more", ref, len(cl), len(pl))
		return
	}
	for i := range pl {
		cd, _ := cl[i].Digest()
		pd, _ := pl[i].Digest()
		if cd != pd {
			t.Errorf("%s: layer %d is %s, the parent's is %s", ref, i, cd, pd)
		}
	}
}

package main

import (
	"archive/tar"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ispec-dev/ispec/internal/imagediff"
	"github.com/ispec-dev/ispec/internal/pyindex"
	"github.com/ispec-dev/ispec/internal/testenv"
	"github.com/ispec-dev/ispec/spec"
)

// lockIndex serves the given wheels from a folder of the test's own.
func lockIndex(t *testing.T, wheels ...pyindex.Wheel) (string, string) {
	t.Helper()
	dir := t.TempDir()
	for _, w := range wheels {
		if _, err := pyindex.Write(dir, w); err != nil {
			t.Fatal(err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: pyindex.Handler(dir), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String(), dir
}

// venvDists lists "name==version" of the image's virtual environment.
func venvDists(t *testing.T, ref string) string {
	t.Helper()
	re := regexp.MustCompile(`^opt/venv/lib/python3[.0-9]*/site-packages/(ispec_[^/]+)-([^-/]+)\.dist-info/METADATA$`)
	var out []string
	layers, err := testenv.Pull(t, ref).Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		testenv.LayerEntries(t, l, func(name string, _ *tar.Header, _ io.Reader) {
			if m := re.FindStringSubmatch(name); m != nil {
				out = append(out, m[1]+"=="+m[2])
			}
		})
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// TestE2ELockPython: ispec lock pins an unpinned package's whole
// resolution; a newer version published later is not installed and the
// tag holds; lock --check names it, locked and available; the
// --upgrade-package moves it and the tag; the --pylock file installs the
// same set through requirements: pylock.toml; build --locked accepts the
// locked spec.
func TestE2ELockPython(t *testing.T) {
	env := e2e(t)
	var core, util10, util11, fast pyindex.Wheel
	for _, w := range pyindex.LockDemo {
		switch w.Name + " " + w.Version {
		case "ispec-lk-core 1.0.0":
			core = w
		case "ispec-lk-util 1.0.0":
			util10 = w
		case "ispec-lk-util 1.1.0":
			util11 = w
		case "ispec-lk-fast 0.5.0":
			fast = w
		}
	}
	index, wheels := lockIndex(t, core, util10, fast)
	n := time.Now().UnixNano()
	dir := writeFiles(t, map[string]string{
		"spec.yaml": fmt.Sprintf("name: lockpy\nregistry: %s/e2e-lockpy-%d\nbase_image: %s\npip_index: %s/simple\npackages: [\"ispec-lk-core[fast]\"]\n", env.Registry, n, env.BasePython, index),
	})
	s := filepath.Join(dir, "spec.yaml")
	untagged, _, _ := runProc(t, "tag", s)

	if out, errOut, code := runProc(t, "lock", s); code != 0 {
		t.Fatalf("lock: exit %d\n%s\n%s", code, out, tail(errOut, 40))
	}
	l, err := spec.ReadLock(s)
	if err != nil || l.Python == nil || len(l.Python.Platforms["linux/amd64"].Packages) != 3 {
		t.Fatalf("lock file: %+v, %v; want three Python packages for linux/amd64", l, err)
	}
	lockedTag, _, _ := runProc(t, "tag", s)
	if lockedTag == untagged {
		t.Error("the Python pins did not change the tag")
	}
	if _, err := pyindex.Write(wheels, util11); err != nil {
		t.Fatal(err)
	}
	res := buildJSON(t, s, "--locked", "--progress", "plain")
	if got := venvDists(t, res.Ref); got != "ispec_lk_core==1.0.0 ispec_lk_fast==0.5.0 ispec_lk_util==1.0.0" {
		t.Errorf("installed %s, want the locked util 1.0.0", got)
	}
	if tag, _, _ := runProc(t, "tag", s); tag != lockedTag {
		t.Errorf("a newer version on the index moved the tag: %s, was %s", tag, lockedTag)
	}

	// The same locked spec built from scratch into another repository
	// gives the same bits: the lock, not the day or the registry, decides
	// the image.
	specData, err := os.ReadFile(s)
	if err != nil {
		t.Fatal(err)
	}
	lockData, err := os.ReadFile(spec.LockPath(s))
	if err != nil {
		t.Fatal(err)
	}
	elsewhere := writeFiles(t, map[string]string{
		"spec.yaml":      strings.Replace(string(specData), fmt.Sprintf("e2e-lockpy-%d", n), fmt.Sprintf("e2e-lockpy-elsewhere-%d", n), 1),
		"spec.yaml.lock": string(lockData),
	})
	again := buildJSON(t, filepath.Join(elsewhere, "spec.yaml"), "--locked", "--no-cache", "--progress", "plain")
	if !again.Built || again.Ref == res.Ref {
		t.Fatalf("build into another repository: %+v; want built at a new ref", again)
	}
	if again.Digest != res.Digest {
		d, err := imagediff.Compare(testenv.Pull(t, res.Ref+"@"+res.Digest), testenv.Pull(t, again.Ref+"@"+again.Digest))
		t.Errorf("the locked spec built again from scratch elsewhere gave %s, first %s; first difference: %v (%v)", again.Digest, res.Digest, d, err)
	}

	out, errOut, code := runProc(t, "lock", "--check", s)
	if code != 1 || !strings.Contains(out, "python (linux/amd64): ispec-lk-util 1.0.0 locked, 1.1.0 available") {
		t.Errorf("lock --check: exit %d, stdout %q, stderr %s; want 1 naming util 1.0.0 and 1.1.0", code, out, tail(errOut, 20))
	}

	pyl := filepath.Join(dir, "pylock.toml")
	if out, errOut, code := runProc(t, "lock", "--upgrade-package", "ispec-lk-util", "--pylock", pyl, s); code != 0 {
		t.Fatalf("lock --upgrade-package: exit %d\n%s\n%s", code, out, tail(errOut, 40))
	}
	if tag, _, _ := runProc(t, "tag", s); tag == lockedTag {
		t.Error("--upgrade-package kept the tag")
	}
	res = buildJSON(t, s, "--progress", "plain")
	want := "ispec_lk_core==1.0.0 ispec_lk_fast==0.5.0 ispec_lk_util==1.1.0"
	if got := venvDists(t, res.Ref); got != want {
		t.Errorf("after --upgrade-package: installed %s, want %s", got, want)
	}

	// The pylock.toml round-trips through requirements: pylock.toml.
	data, err := os.ReadFile(pyl)
	if err != nil {
		t.Fatal(err)
	}
	dir2 := writeFiles(t, map[string]string{
		"spec.yaml":   fmt.Sprintf("name: lockpy2\nregistry: %s/e2e-lockpy-%d\nbase_image: %s\nrequirements: pylock.toml\n", env.Registry, n, env.BasePython),
		"pylock.toml": string(data),
	})
	res = buildJSON(t, filepath.Join(dir2, "spec.yaml"), "--locked", "--progress", "plain")
	if got := venvDists(t, res.Ref); got != want {
		t.Errorf("from the written pylock.toml: installed %s, want %s", got, want)
	}
}

// TestE2EFloatingBuildRecordsResolved: a build of a spec whose Python
// packages float records what it got: every distribution of the image's
// virtual environment, in the --json output and in the image's
// dev.ispec.python-resolved label, under the tag `ispec tag` computes
// (the record does not change the identity).
func TestE2EFloatingBuildRecordsResolved(t *testing.T) {
	env := e2e(t)
	index, _ := lockIndex(t, lockDemo(t, "ispec-lk-core 1.0.0", "ispec-lk-util 1.1.0", "ispec-lk-fast 0.5.0")...)
	dir := writeFiles(t, map[string]string{
		"spec.yaml": fmt.Sprintf("name: floatrec\nregistry: %s/e2e-floatrec-%d\nbase_image: %s\npip_index: %s/simple\npackages: [\"ispec-lk-core[fast]\"]\n", env.Registry, time.Now().UnixNano(), env.BasePython, index),
	})
	s := filepath.Join(dir, "spec.yaml")
	tag, _, _ := runProc(t, "tag", s)
	res := buildJSON(t, s, "--progress", "plain")
	if res.Ref != strings.TrimSpace(tag) {
		t.Errorf("built %s, but ispec tag says %s", res.Ref, tag)
	}
	want := []string{"ispec-lk-core==1.0.0", "ispec-lk-fast==0.5.0", "ispec-lk-util==1.1.0"}
	got := res.PythonResolved["linux/amd64"]
	t.Logf("python_resolved: %v", res.PythonResolved)
	if len(res.PythonResolved) != 1 || !containsAll(got, want) || !slices.IsSorted(got) || !slices.ContainsFunc(got, func(d string) bool { return strings.HasPrefix(d, "pip==") }) {
		t.Errorf("python_resolved = %v; want linux/amd64 with %v and the venv's pip, sorted", res.PythonResolved, want)
	}
	cfg, err := testenv.Pull(t, res.Ref).ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if label := cfg.Config.Labels["dev.ispec.python-resolved"]; label != strings.Join(got, " ") {
		t.Errorf("label dev.ispec.python-resolved = %q, want %q", label, strings.Join(got, " "))
	}
	// Found again: nothing built, nothing recorded.
	if again := buildJSON(t, s, "--progress", "plain"); again.Outcome != "found" || again.PythonResolved != nil {
		t.Errorf("second build: %+v; want found without python_resolved", again)
	}
}

// lockDemo picks LockDemo wheels by "name version".
func lockDemo(t *testing.T, which ...string) []pyindex.Wheel {
	t.Helper()
	var out []pyindex.Wheel
	for _, k := range which {
		i := slices.IndexFunc(pyindex.LockDemo, func(w pyindex.Wheel) bool { return w.Name+" "+w.Version == k })
		if i < 0 {
			t.Fatalf("no LockDemo wheel %s", k)
		}
		out = append(out, pyindex.LockDemo[i])
	}
	return out
}

// containsAll reports whether every one of want is in got.
func containsAll(got, want []string) bool {
	for _, w := range want {
		if !slices.Contains(got, w) {
			return false
		}
	}
	return true
}

// TestE2ELockNestedPython: a child spec locks only what it adds, against
// its parent's locked environment: the parent pins util 1.0.0; after
// util 1.1.0 is published, the child's lock (core[fast], which needs
// util) constrains util to the parent's pin and records core and fast
// only; the child's locked build has the parent's util and its own two.
func TestE2ELockNestedPython(t *testing.T) {
	env := e2e(t)
	index, wheels := lockIndex(t, lockDemo(t, "ispec-lk-core 1.0.0", "ispec-lk-util 1.0.0", "ispec-lk-fast 0.5.0")...)
	n := time.Now().UnixNano()
	dir := writeFiles(t, map[string]string{
		"parent.yaml": fmt.Sprintf("name: nestparent\nregistry: %s/e2e-locknest-%d\nbase_image: %s\npip_index: %s/simple\npackages: [\"ispec-lk-util\"]\n", env.Registry, n, env.BasePython, index),
		"child.yaml":  fmt.Sprintf("name: nestchild\nregistry: %s/e2e-locknest-%d\nbase_image: {spec: parent.yaml}\npip_index: %s/simple\npackages: [\"ispec-lk-core[fast]\"]\n", env.Registry, n, index),
	})
	parent, child := filepath.Join(dir, "parent.yaml"), filepath.Join(dir, "child.yaml")
	if out, errOut, code := runProc(t, "lock", parent); code != 0 {
		t.Fatalf("lock parent: exit %d\n%s\n%s", code, out, tail(errOut, 40))
	}
	buildJSON(t, parent, "--locked", "--progress", "plain")
	if _, err := pyindex.Write(wheels, lockDemo(t, "ispec-lk-util 1.1.0")[0]); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := runProc(t, "lock", child); code != 0 {
		t.Fatalf("lock child: exit %d\n%s\n%s", code, out, tail(errOut, 40))
	}
	l, err := spec.ReadLock(child)
	if err != nil || l.Python == nil || l.Python.Platforms["linux/amd64"] == nil {
		t.Fatalf("child's lock: %+v, %v", l, err)
	}
	var got []string
	for _, p := range l.Python.Platforms["linux/amd64"].Packages {
		got = append(got, p.Name+"=="+p.Version)
	}
	if strings.Join(got, " ") != "ispec-lk-core==1.0.0 ispec-lk-fast==0.5.0" {
		t.Errorf("the child's lock pins %v; want core and fast only (util is the parent's)", got)
	}
	parentTag, _, _ := runProc(t, "tag", parent)
	if l.Parent == nil || l.Parent.Ref != strings.TrimSpace(parentTag) {
		t.Errorf("the child's lock records parent %+v; want the locked parent's %s", l.Parent, parentTag)
	}
	res := buildJSON(t, child, "--locked", "--progress", "plain")
	if got := venvDists(t, res.Ref); got != "ispec_lk_core==1.0.0 ispec_lk_fast==0.5.0 ispec_lk_util==1.0.0" {
		t.Errorf("the child installed %s; want the parent's util 1.0.0 with core and fast", got)
	}
	if out, _, code := runProc(t, "lock", "--check", child); code != 0 {
		t.Errorf("lock --check child: exit %d, %s; want no drift (util 1.1.0 is the parent's concern)", code, out)
	}
}

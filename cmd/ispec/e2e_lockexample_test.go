package main

import (
	"archive/tar"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ispec-dev/ispec/internal/pyindex"
	"github.com/ispec-dev/ispec/internal/testenv"
	"github.com/ispec-dev/ispec/spec"
)

// lockExample is the worked example of docs/lockfile.md, as the doc names
// it.
const lockExample = "examples/lockfile/ml.yaml"

// TestE2ELockWorkedExample runs docs/lockfile.md's worked example as
// written (the mission's tensorflow, pillow and scipy, against the
// index's stand-ins; the registry and index are the test's own): the doc
// shows the example file, and each command's output the doc shows is
// the output: build --locked refused, the four pins ispec lock writes,
// the locked build installing exactly those, lock --check naming pillow
// once 11.1.0 is published, --upgrade-package moving pillow alone.
func TestE2ELockWorkedExample(t *testing.T) {
	env := e2e(t)
	docBytes, err := os.ReadFile(filepath.Join("..", "..", "docs", "lockfile.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(docBytes)
	example, err := os.ReadFile(filepath.Join("..", "..", filepath.FromSlash(lockExample)))
	if err != nil {
		t.Fatal(err)
	}
	var body []string
	for _, l := range strings.SplitAfter(string(example), "\n") {
		if !strings.HasPrefix(l, "#") {
			body = append(body, l)
		}
	}
	if !strings.Contains(doc, "```yaml\n"+strings.Join(body, "")+"```\n") {
		t.Fatalf("docs/lockfile.md does not show %s as it is:\n%s", lockExample, strings.Join(body, ""))
	}
	// The doc's console blocks: each "$ command" with the lines after it.
	shown := func(cmd string) []string {
		t.Helper()
		i := strings.Index(doc, "$ "+cmd+"\n")
		if i < 0 {
			t.Fatalf("docs/lockfile.md does not show $ %s", cmd)
		}
		var out []string
		for _, l := range strings.Split(doc[i+len(cmd)+3:], "\n") {
			if strings.HasPrefix(l, "$ ") || strings.HasPrefix(l, "```") {
				break
			}
			out = append(out, l)
		}
		return out
	}

	index, wheels := lockIndex(t, pyindex.StandIns...)
	text := string(example)
	for old, repl := range map[string]string{
		"registry: 127.0.0.1:5000/examples":                          fmt.Sprintf("registry: %s/e2e-lockexample-%d", env.Registry, time.Now().UnixNano()),
		"base_image: 127.0.0.1:5000/fixtures/debian-python:bookworm": "base_image: " + env.BasePython,
		"pip_index: http://127.0.0.1:5081/simple":                    "pip_index: " + index + "/simple",
	} {
		if !strings.Contains(text, old+"\n") {
			t.Fatalf("%s lacks %q", lockExample, old)
		}
		text = strings.Replace(text, old+"\n", repl+"\n", 1)
	}
	dir := writeFiles(t, map[string]string{"ml.yaml": text})
	s := filepath.Join(dir, "ml.yaml")
	asDoc := func(out string) []string {
		return strings.Split(strings.TrimRight(strings.ReplaceAll(out, s, lockExample), "\n"), "\n")
	}

	_, errOut, code := runProc(t, "build", "--locked", s)
	if want := shown("ispec build --locked " + lockExample); code != 2 || asDoc(errOut)[0] != want[0] {
		t.Errorf("build --locked: exit %d, stderr\n%s\nwant exit 2 starting\n%s", code, errOut, want[0])
	}

	out, errOut, code := runProc(t, "lock", s)
	if want := shown("ispec lock " + lockExample); code != 0 || strings.Join(asDoc(out), "\n") != strings.Join(want, "\n") {
		t.Fatalf("lock: exit %d, stdout %q, want %q\n%s", code, out, want, tail(errOut, 40))
	}
	pins := func() []string {
		l, err := spec.ReadLock(s)
		if err != nil || l.Python == nil || l.Python.Platforms["linux/amd64"] == nil {
			t.Fatalf("the lock: %+v, %v", l, err)
		}
		var out []string
		for _, p := range l.Python.Platforms["linux/amd64"].Packages {
			out = append(out, p.Name+"=="+p.Version)
		}
		return out
	}
	want := shown(`jq -r '.python.platforms["linux/amd64"].packages[] | "\(.name)==\(.version)"' ` + lockExample + ".lock")
	if got := pins(); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("the lock pins %v; the doc shows %v", got, want)
	}
	lockedTag, _, _ := runProc(t, "tag", s)

	res := buildJSON(t, s, "--locked", "--progress", "plain")
	if got := standInDists(t, res.Ref); got != strings.Join(want, " ") {
		t.Errorf("the locked build installed %s; want %s", got, strings.Join(want, " "))
	}
	if res.PythonResolved != nil {
		t.Errorf("a locked build recorded python_resolved %v; nothing floats", res.PythonResolved)
	}

	if _, err := pyindex.Write(wheels, pyindex.PillowLater); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = runProc(t, "lock", "--check", s)
	if want := shown("ispec lock --check " + lockExample); code != 1 || strings.Join(asDoc(out), "\n") != strings.Join(want, "\n") {
		t.Errorf("lock --check: exit %d, stdout %q, want exit 1 and %q\n%s", code, out, want, tail(errOut, 20))
	}
	if tag, _, _ := runProc(t, "tag", s); tag != lockedTag {
		t.Errorf("pillow 11.1.0 on the index moved the tag: %s, was %s", tag, lockedTag)
	}
	out, errOut, code = runProc(t, "lock", "--upgrade-package", "pillow", s)
	if want := shown("ispec lock --upgrade-package pillow " + lockExample); code != 0 || strings.Join(asDoc(out), "\n") != strings.Join(want, "\n") {
		t.Fatalf("lock --upgrade-package: exit %d, stdout %q, want %q\n%s", code, out, want, tail(errOut, 40))
	}
	if got := strings.Join(pins(), " "); got != "numpy==2.1.3 pillow==11.1.0 scipy==1.14.1 tensorflow==2.18.0" {
		t.Errorf("after --upgrade-package pillow the lock pins %s; want pillow alone moved", got)
	}
	if tag, _, _ := runProc(t, "tag", s); tag == lockedTag {
		t.Error("--upgrade-package kept the tag")
	}
}

// standInDists lists "name==version" of the stand-ins in the image's
// virtual environment, from their .dist-info folders.
func standInDists(t *testing.T, ref string) string {
	t.Helper()
	re := regexp.MustCompile(`^opt/venv/lib/python3[.0-9]*/site-packages/(numpy|pillow|scipy|tensorflow)-([^-/]+)\.dist-info/METADATA$`)
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

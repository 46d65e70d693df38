package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestExpandSpecArgs(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"a.yaml":                "x",
		"b.yml":                 "x",
		"team/c.yaml":           "x",
		"team/deep/er/d.yaml":   "x",
		"team/deep/notes.txt":   "x",
		".hidden/e.yaml":        "x",
		"team/.f.yaml":          "x",
		"dir.yaml/inside.yaml":  "x",
		"other/[x].yaml":        "x",
		"other/plain-name.yaml": "x",
	})
	rel := func(ps []string) []string {
		var out []string
		for _, p := range ps {
			r, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(r))
		}
		return out
	}
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"*.yaml"}, []string{"a.yaml"}},
		{[]string{"*.y*ml"}, []string{"a.yaml", "b.yml"}},
		{[]string{"**/*.yaml"}, []string{"a.yaml", "dir.yaml/inside.yaml", "other/[x].yaml", "other/plain-name.yaml", "team/c.yaml", "team/deep/er/d.yaml"}},
		{[]string{"team/**/*.yaml"}, []string{"team/c.yaml", "team/deep/er/d.yaml"}},
		{[]string{"team/**"}, []string{"team/c.yaml", "team/deep/er/d.yaml", "team/deep/notes.txt"}},
		{[]string{"**/.*.yaml"}, []string{"team/.f.yaml"}},
		{[]string{".hidden/*.yaml"}, []string{".hidden/e.yaml"}},
		// A file named twice is built once; a plain argument is kept as given.
		{[]string{"a.yaml", "*.yaml", "missing.yaml"}, []string{"a.yaml", "missing.yaml"}},
		{[]string{"team/?.yaml"}, []string{"team/c.yaml"}},
		{[]string{"other/[p]*.yaml"}, []string{"other/plain-name.yaml"}},
	} {
		args := make([]string, len(tc.args))
		for i, a := range tc.args {
			args[i] = filepath.Join(dir, a)
		}
		got, err := expandSpecArgs(args)
		if err != nil || !slices.Equal(rel(got), tc.want) {
			t.Errorf("expand %v = %v, %v; want %v", tc.args, rel(got), err, tc.want)
		}
	}
	// Relative patterns stay relative.
	t.Chdir(dir)
	if got, err := expandSpecArgs([]string{"team/*.yaml"}); err != nil || !slices.Equal(got, []string{"team/c.yaml"}) {
		t.Errorf("relative pattern = %v, %v", got, err)
	}
}

func TestExpandSpecArgsErrors(t *testing.T) {
	dir := writeFiles(t, map[string]string{"a.yaml": "x"})
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"*.toml"}, []string{`pattern "` + filepath.Join(dir, "*.toml") + `" matches no spec file`}},
		{[]string{"nope/**/*.yaml", "*.yaml", "x*/a.yaml"}, []string{"nope/**/*.yaml", "x*/a.yaml", "matches no spec file"}},
		{[]string{"[a.yaml"}, []string{"syntax error in pattern"}},
		{[]string{"a**/b.yaml"}, []string{"** must be a whole path element"}},
	} {
		args := make([]string, len(tc.args))
		for i, a := range tc.args {
			args[i] = filepath.Join(dir, a)
		}
		got, err := expandSpecArgs(args)
		if err == nil || exitCode(err) != exitInvalid {
			t.Errorf("expand %v = %v, %v; want a usage error", tc.args, got, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("expand %v: %v does not say %q", tc.args, err, w)
			}
		}
	}
	// Through the command: exit 2 naming the pattern, nothing written.
	isolate(t)
	out := filepath.Join(t.TempDir(), "results.json")
	_, errOut, code := run(t, "build", "--json-out", out, filepath.Join(dir, "a.yaml"), filepath.Join(dir, "specs/**/*.yaml"))
	if code != exitInvalid || !strings.Contains(errOut, "specs/**/*.yaml") {
		t.Errorf("exit %d, stderr %q; want 2 naming the pattern", code, errOut)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("--json-out written for a usage error")
	}
}

func TestLineWriter(t *testing.T) {
	var b bytes.Buffer
	out := &lockedWriter{w: &b}
	w := newLineWriter(out, "a.yaml", false)
	w.Write([]byte("#1 [internal] load\n#1 DO"))
	w.Write([]byte("NE 0.1s\n"))
	w.Write([]byte("tail"))
	w.flush()
	if want := "[a.yaml] #1 [internal] load\n[a.yaml] #1 DONE 0.1s\n[a.yaml] tail\n"; b.String() != want {
		t.Errorf("plain = %q, want %q", b.String(), want)
	}
	b.Reset()
	j := newLineWriter(out, `s"1.yaml`, true)
	j.Write([]byte(`{"vertexes":[]}` + "\n{}\nnot json\n"))
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	var rec map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &rec); err != nil || rec["spec"] != `s"1.yaml` || rec["vertexes"] == nil {
		t.Errorf("json line %q (%v)", lines[0], err)
	}
	if lines[1] != "{}" || lines[2] != "not json" {
		t.Errorf("other lines %q", lines[1:])
	}
}

func TestWorstExitCode(t *testing.T) {
	for _, tc := range []struct {
		codes []int
		want  int
	}{
		{nil, 0},
		{[]int{0, 0}, 0},
		{[]int{0, 1}, 1},
		{[]int{1, 3, 0}, 3},
		{[]int{3, 2, 1}, 2},
		{[]int{2, 3}, 2},
		{[]int{2, 130, 1}, 130},
	} {
		r := &buildRun{codes: tc.codes}
		if got := r.code(); got != tc.want {
			t.Errorf("worst of %v = %d, want %d", tc.codes, got, tc.want)
		}
	}
}

func TestMarkdownSummary(t *testing.T) {
	recs := []specRecord{
		{Spec: "a.yaml", Ref: "r/a:1", Digest: "sha256:aa", Outcome: outcomeBuilt, Duration: 2.5},
		{Spec: "b|c.yaml", Ref: "r/b:1", Outcome: outcomeFailed, Error: &errorRecord{Class: classFailed, Message: "step\nfailed | `x`"}},
	}
	md := markdownSummary(recs, summary{Specs: 2, Built: 1, Failed: 1, Duration: 3})
	for _, want := range []string{"2 specs in 3s: **0 found**, **1 built**, **1 failed**", "| `a.yaml` | `r/a:1@sha256:aa` | built | 2.5s |", "| `b\\|c.yaml` | `r/b:1` | failed (failed): step failed \\| 'x' |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown does not contain %q:\n%s", want, md)
		}
	}
}

// TestBuildReportsWithoutBuildKit: invalid specs and an unreachable
// BuildKit, all attempted: the results file, the step summary and the
// stderr summary say so for each spec; nothing is pushed.
func TestBuildReportsWithoutBuildKit(t *testing.T) {
	host := localRegistry(t)
	isolate(t)
	t.Setenv("BUILDKIT_HOST", "unix:///nonexistent/buildkitd.sock")
	dir := writeFiles(t, map[string]string{
		"specs/a.yaml":      "name: a\nregistry: " + host + "/team\n",
		"specs/sub/b.yaml":  "name: b\nregistry: " + host + "/team\n",
		"specs/bad.yaml":    "name: bad\nregistry: " + host + "/team\npython_version: [3]\n",
		"specs/notes.txt":   "not a spec",
		"specs/sub/c.toml":  "name = \"c\"\nregistry = \"" + host + "/team\"\npackges = []\n",
		"results/.keep":     "",
		"stepsummary/.keep": "",
	})
	results := filepath.Join(dir, "results/out.json")
	step := filepath.Join(dir, "stepsummary/summary.md")
	os.WriteFile(step, []byte("earlier step\n"), 0o644)
	t.Setenv("GITHUB_STEP_SUMMARY", step)
	for _, jobs := range []string{"1", "3"} {
		out, errOut, code := run(t, "build", "--jobs", jobs, "--json-out", results, "--progress", "plain",
			filepath.Join(dir, "specs/**/*.yaml"), filepath.Join(dir, "specs/**/*.toml"))
		if code != exitInvalid {
			t.Errorf("jobs %s: exit %d, want 2 (invalid over unavailable)\n%s", jobs, code, errOut)
		}
		if out != "" {
			t.Errorf("jobs %s: stdout %q, want nothing: no spec succeeded", jobs, out)
		}
		var doc resultsFile
		dt, err := os.ReadFile(results)
		if err != nil || json.Unmarshal(dt, &doc) != nil {
			t.Fatalf("results file: %v\n%s", err, dt)
		}
		var got []string
		for _, r := range doc.Results {
			rel, _ := filepath.Rel(filepath.Join(dir, "specs"), r.Spec)
			cls := ""
			if r.Error != nil {
				cls = r.Error.Class
			}
			got = append(got, rel+" "+r.Outcome+" "+cls)
		}
		want := []string{"a.yaml failed unavailable", "bad.yaml failed invalid", "sub/b.yaml failed unavailable", "sub/c.toml failed invalid"}
		if !slices.Equal(got, want) {
			t.Errorf("jobs %s: results %v, want %v", jobs, got, want)
		}
		if doc.Results[0].Name != "a" || !strings.HasPrefix(doc.Results[0].Ref, host+"/team/a:") || doc.Results[0].Digest != "" {
			t.Errorf("record %+v", doc.Results[0])
		}
		for _, r := range doc.Results[1:2] {
			if !strings.Contains(r.Error.Message, "bad.yaml:3") || !strings.Contains(r.Error.Message, "python_version") {
				t.Errorf("invalid record does not name file, line and field: %+v", r.Error)
			}
		}
		if s := doc.Summary; s.Specs != 4 || s.Failed != 4 || s.Found+s.Built != 0 {
			t.Errorf("summary %+v", s)
		}
		if !strings.Contains(errOut, "ispec: summary: 4 specs in ") || !strings.Contains(errOut, "0 found, 0 built, 4 failed") || !strings.Contains(errOut, "failed (invalid): "+filepath.Join(dir, "specs/bad.yaml")) {
			t.Errorf("jobs %s: stderr summary missing:\n%s", jobs, errOut)
		}
		leftovers, _ := filepath.Glob(filepath.Join(dir, "results/.out.json.*"))
		if len(leftovers) != 0 {
			t.Errorf("temporary files left: %v", leftovers)
		}
	}
	md, _ := os.ReadFile(step)
	if !strings.HasPrefix(string(md), "earlier step\n") || strings.Count(string(md), "### ispec build") != 2 || !strings.Contains(string(md), "failed (invalid)") {
		t.Errorf("step summary:\n%s", md)
	}
	for _, n := range []string{"a", "b"} {
		if tags := registryTags(t, host, "team/"+n); len(tags) != 0 {
			t.Errorf("team/%s has tags %v after failed builds", n, tags)
		}
	}
}

func TestBuildFlagErrors(t *testing.T) {
	isolate(t)
	dir := writeFiles(t, map[string]string{"a.yaml": "name: a\nregistry: example.com/x\n", "b.yaml": "name: b\nregistry: example.com/x\n"})
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--jobs", "0", a}, "--jobs 0: expected 1 or more"},
		{[]string{"-j", "-2", a, b}, "--jobs -2"},
		{[]string{"--image-args", "--json", a}, "--image-args and --json"},
		{[]string{"--json-out", filepath.Join(dir, "no/such/dir/r.json"), a}, "does not exist"},
		{[]string{"--json-out", dir, a}, "is a folder"},
		{[]string{"--output", "oci:" + filepath.Join(dir, "x.tar"), a, b}, "give one spec, not 2"},
		{[]string{"--output", "oci:" + filepath.Join(dir, "x.tar"), "--image-args", a}, "--image-args names images in a registry"},
	} {
		_, errOut, code := run(t, append([]string{"build"}, tc.args...)...)
		if code != exitInvalid || !strings.Contains(errOut, tc.want) {
			t.Errorf("build %v: exit %d, stderr %q; want 2 saying %q", tc.args, code, errOut, tc.want)
		}
	}
}

// registryTags lists a repository's tags; none when it does not exist.
func registryTags(t *testing.T, host, repo string) []string {
	t.Helper()
	r, err := name.NewRepository(host+"/"+repo, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	tags, _ := remote.List(r)
	return tags
}

// Two specs with one name but different images would give pyflyte
// register two --image NAME= arguments, of which it keeps the last: say so.
func TestImageArgsWarnOnDuplicateNames(t *testing.T) {
	var out, errb bytes.Buffer
	r := &buildRun{stdout: &out, msgs: newMessages(&errb, "plain"), records: []specRecord{
		{Spec: "a/app.yaml", Name: "app", Ref: "r/app:1", Digest: "sha256:a", Outcome: outcomeBuilt},
		{Spec: "b/app.yaml", Name: "app", Ref: "r/app:2", Digest: "sha256:b", Outcome: outcomeBuilt},
		{Spec: "c/app.yaml", Name: "app", Ref: "r/app:1", Digest: "sha256:a", Outcome: outcomeFound},
		{Spec: "d/other.yaml", Name: "other", Ref: "r/o:1", Digest: "sha256:c", Outcome: outcomeFound},
	}}
	r.printImageArgs()
	if strings.Count(out.String(), "--image ") != 4 {
		t.Errorf("stdout %q", out.String())
	}
	warn := errb.String()
	if strings.Count(warn, "warning") != 1 || !strings.Contains(warn, "a/app.yaml and b/app.yaml are both named \"app\"") {
		t.Errorf("stderr %q, want one warning naming a/app.yaml and b/app.yaml", warn)
	}
}

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ispec-dev/ispec/internal/testenv"
)

// prebuildFolder writes a CI folder of specs under one fresh registry
// namespace: present ones (built here first), absent ones that share a
// parent spec, one invalid, one whose build fails.
func prebuildFolder(t *testing.T, env *testenv.Env) (dir, ns string) {
	t.Helper()
	ns = fmt.Sprintf("%s/prebuild-%d", env.Registry, time.Now().UnixNano())
	files := map[string]string{
		"images/base/parent.yaml":  fmt.Sprintf("name: parent\nregistry: %s\nbase_image: %s\ncommands: [\"echo parent > /parent.txt\"]\n", ns, env.BaseBusybox),
		"images/team-a/bad.yaml":   fmt.Sprintf("name: bad\nregistry: %s\nbase_image: %s\napt_packages: [\"curl; id\"]\n", ns, env.BaseBusybox),
		"images/team-b/fails.yaml": fmt.Sprintf("name: fails\nregistry: %s\nbase_image: %s\ncommands: [\"exit 3\"]\n", ns, env.BaseBusybox),
	}
	for i := range 2 {
		files[fmt.Sprintf("images/team-a/present%d.yaml", i)] = fmt.Sprintf("name: present%d\nregistry: %s\nbase_image: %s\nenv: {N: \"%d\"}\n", i, ns, env.BaseBusybox, i)
	}
	for i := range 3 {
		files[fmt.Sprintf("images/team-b/absent%d.yaml", i)] = fmt.Sprintf("name: absent%d\nregistry: %s\nbase_image: {spec: ../base/parent.yaml}\ncommands: [\"sleep 1; cat /parent.txt > /child%d.txt\"]\n", i, ns, i)
	}
	return writeFiles(t, files), ns
}

// TestPrebuildFolder is the CI pre-build mode end to end: a quoted
// recursive pattern over a folder, --jobs 4, --json-out, --image-args.
// Every spec is attempted: present ones are found, absent ones built and
// pushed exactly once (their shared parent too), the invalid one is
// reported with file, line and field, the failing one pushes nothing, and
// the exit code is the worst (invalid).
func TestPrebuildFolder(t *testing.T) {
	env := e2e(t)
	dir, ns := prebuildFolder(t, env)
	spec := func(p string) string { return filepath.Join(dir, "images", p) }
	refOf := func(p string) string {
		out, errOut, code := run(t, "tag", spec(p))
		if code != 0 {
			t.Fatalf("tag %s: %d %s", p, code, errOut)
		}
		return strings.TrimSpace(out)
	}
	for _, p := range []string{"team-a/present0.yaml", "team-a/present1.yaml"} {
		if _, errOut, code := runProc(t, "build", "--progress", "quiet", spec(p)); code != 0 {
			t.Fatalf("building %s first: exit %d\n%s", p, code, errOut)
		}
	}
	step := filepath.Join(t.TempDir(), "step-summary.md")
	t.Setenv("GITHUB_STEP_SUMMARY", step)
	// A fresh local index: present images are found in the registry.
	t.Setenv("ISPEC_CACHE_DIR", t.TempDir())
	results := filepath.Join(t.TempDir(), "results.json")

	out, errOut, code := runProc(t, "build", "--jobs", "4", "--json-out", results, "--image-args", "--progress", "plain",
		filepath.Join(dir, "images/**/*.yaml"))
	if code != exitInvalid {
		t.Fatalf("exit %d, want 2 (an invalid spec is the worst outcome)\n%s", code, tail(errOut, 80))
	}
	var doc resultsFile
	dt, err := os.ReadFile(results)
	if err != nil || json.Unmarshal(dt, &doc) != nil {
		t.Fatalf("results file: %v\n%s", err, dt)
	}
	got := map[string]specRecord{}
	for _, r := range doc.Results {
		rel, _ := filepath.Rel(filepath.Join(dir, "images"), r.Spec)
		got[rel] = r
	}
	want := map[string]string{
		"base/parent.yaml": outcomeBuilt, "team-a/bad.yaml": outcomeFailed, "team-b/fails.yaml": outcomeFailed,
		"team-a/present0.yaml": outcomeFound, "team-a/present1.yaml": outcomeFound,
		"team-b/absent0.yaml": outcomeBuilt, "team-b/absent1.yaml": outcomeBuilt, "team-b/absent2.yaml": outcomeBuilt,
	}
	if len(got) != len(want) {
		t.Errorf("%d records, want %d: %+v", len(got), len(want), doc.Results)
	}
	for p, outcome := range want {
		r, ok := got[p]
		if !ok || r.Outcome != outcome {
			t.Errorf("%s: %+v, want %s", p, r, outcome)
			continue
		}
		if outcome != outcomeFailed && (r.Digest == "" || r.Ref != refOf(p) || r.Error != nil || r.Name == "") {
			t.Errorf("%s: record %+v", p, r)
		}
	}
	if e := got["team-a/bad.yaml"].Error; e == nil || e.Class != classInvalid || !strings.Contains(e.Message, "bad.yaml:4") || !strings.Contains(e.Message, "apt_packages") {
		t.Errorf("invalid spec's error %+v: want class invalid naming file, line and field", e)
	}
	if e := got["team-b/fails.yaml"].Error; e == nil || e.Class != classFailed || !strings.Contains(e.Message, "exit code: 3") {
		t.Errorf("failing spec's error %+v: want class failed with the exit code", e)
	}
	if s := doc.Summary; s.Specs != 8 || s.Found != 2 || s.Built != 4 || s.Failed != 2 {
		t.Errorf("summary %+v, want 8 specs: 2 found, 4 built, 2 failed", s)
	}
	// Exactly one push per absent image, the shared parent included; none
	// for the failing one or for the present ones.
	for p, n := range map[string]int{"base/parent.yaml": 1, "team-b/absent0.yaml": 1, "team-b/absent1.yaml": 1, "team-b/absent2.yaml": 1, "team-a/present0.yaml": 1, "team-b/fails.yaml": 0} {
		if c := testenv.CountManifestPuts(t, env.RegistryLog, repoOf(refOf(p))); c != n {
			t.Errorf("%s: %d manifest pushes, want %d", p, c, n)
		}
	}
	assertNothingPushed(t, env, refOf("team-b/fails.yaml"))

	// stdout: the pyflyte register arguments, one per spec that exists.
	args := strings.Split(strings.TrimSpace(out), "\n")
	var wantArgs []string
	for _, p := range []string{"base/parent.yaml", "team-a/present0.yaml", "team-a/present1.yaml", "team-b/absent0.yaml", "team-b/absent1.yaml", "team-b/absent2.yaml"} {
		r := got[p]
		wantArgs = append(wantArgs, fmt.Sprintf("--image %s=%s@%s", r.Name, r.Ref, r.Digest))
	}
	if !slices.Equal(args, wantArgs) {
		t.Errorf("stdout %q, want %q", args, wantArgs)
	}
	// Concurrent plain progress is marked with its spec.
	if !strings.Contains(errOut, "["+spec("team-b/fails.yaml")+"] ") {
		t.Errorf("progress lines are not marked with their spec:\n%s", tail(errOut, 40))
	}
	if !strings.Contains(errOut, "ispec: summary: 8 specs in ") || !strings.Contains(errOut, "2 found, 4 built") {
		t.Errorf("no summary on stderr:\n%s", tail(errOut, 20))
	}
	md, _ := os.ReadFile(step)
	if !strings.Contains(string(md), "**2 found**, **4 built**, **2 failed**") || !strings.Contains(string(md), ns) {
		t.Errorf("step summary:\n%s", md)
	}

	// Again with --jobs 1, a fresh index: all found but the two that fail.
	t.Setenv("ISPEC_CACHE_DIR", t.TempDir())
	_, errOut, code = runProc(t, "build", "--json-out", results, "--progress", "quiet", filepath.Join(dir, "images/**/*.yaml"))
	dt, _ = os.ReadFile(results)
	doc = resultsFile{}
	if code != exitInvalid || json.Unmarshal(dt, &doc) != nil || doc.Summary.Found != 6 || doc.Summary.Built != 0 || doc.Summary.Failed != 2 {
		t.Errorf("second run: exit %d, summary %+v\n%s", code, doc.Summary, errOut)
	}
	if c := testenv.CountManifestPuts(t, env.RegistryLog, repoOf(refOf("team-b/absent0.yaml"))); c != 1 {
		t.Errorf("second run pushed again: %d manifest pushes", c)
	}
}

// TestPrebuildThroughServer: the same mode through `ispec serve`: two
// absent children of one parent at --jobs 2, a present one, a failing
// one; the parent is built once, the exit code is 1 (a build failed).
func TestPrebuildThroughServer(t *testing.T) {
	env := e2e(t)
	ns := fmt.Sprintf("%s/prebuild-srv-%d", env.Registry, time.Now().UnixNano())
	dir := writeFiles(t, map[string]string{
		"parent.yaml":  fmt.Sprintf("name: parent\nregistry: %s\nbase_image: %s\ncommands: [\"echo p > /p.txt\"]\n", ns, env.BaseBusybox),
		"c/one.yaml":   fmt.Sprintf("name: one\nregistry: %s\nbase_image: {spec: ../parent.yaml}\ncommands: [\"cp /p.txt /one.txt\"]\n", ns),
		"c/two.yaml":   fmt.Sprintf("name: two\nregistry: %s\nbase_image: {spec: ../parent.yaml}\ncommands: [\"cp /p.txt /two.txt\"]\n", ns),
		"c/fails.yaml": fmt.Sprintf("name: fails\nregistry: %s\nbase_image: %s\ncommands: [\"exit 3\"]\n", ns, env.BaseBusybox),
	})
	srv := startServe(t)
	results := filepath.Join(t.TempDir(), "r.json")
	out, errOut, code := runProc(t, "build", "--server", srv.addr, "--jobs", "2", "--json-out", results, "--json", "--progress", "json",
		filepath.Join(dir, "c/*.yaml"), filepath.Join(dir, "parent.yaml"))
	if code != exitFailed {
		t.Fatalf("exit %d, want 1\n%s\n%s", code, out, tail(errOut, 40))
	}
	stderrJSON(t, errOut) // all of stderr is JSON, progress of concurrent builds included
	recs := buildRecords(t, out)
	var names []string
	for _, r := range recs {
		names = append(names, filepath.Base(r.Spec)+":"+fmt.Sprint(r.Error == nil))
	}
	if want := []string{"fails.yaml:false", "one.yaml:true", "two.yaml:true", "parent.yaml:true"}; !slices.Equal(names, want) {
		t.Errorf("stdout records %v, want %v (in the order given)", names, want)
	}
	var doc resultsFile
	dt, _ := os.ReadFile(results)
	if json.Unmarshal(dt, &doc) != nil || doc.Summary.Built+doc.Summary.Found != 3 || doc.Summary.Built < 2 || doc.Summary.Failed != 1 {
		t.Errorf("results %s", dt)
	}
	if c := testenv.CountManifestPuts(t, env.RegistryLog, ns[strings.Index(ns, "/")+1:]+"/parent"); c != 1 {
		t.Errorf("parent pushed %d times, want 1", c)
	}
}

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ispec-dev/ispec/cache"
	"github.com/ispec-dev/ispec/internal/testenv"
)

// ispecBinary builds the CLI once per test run, for tests that need real
// processes (file locks work between processes).
var ispecBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "ispec-bin")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "ispec")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", &exec.ExitError{Stderr: out}
	}
	return bin, nil
})

// e2e prepares a real environment: BuildKit, the registry and fixtures.
func e2e(t *testing.T) *testenv.Env {
	t.Helper()
	env := testenv.Load(t)
	isolate(t)
	t.Setenv("BUILDKIT_HOST", env.BuildkitHost)
	return env
}

// runProc runs the built CLI as a process.
func runProc(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	bin, err := ispecBinary()
	if err != nil {
		t.Fatalf("building ispec: %v", err)
	}
	cmd := exec.Command(bin, args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), errb.String(), code
}

// uniqueSpec writes a spec whose tag no earlier run has built.
func uniqueSpec(t *testing.T, env *testenv.Env, body string) string {
	t.Helper()
	dir := writeFiles(t, map[string]string{
		"spec.yaml": fmt.Sprintf("name: e2e-%d\nregistry: %s/cli\nbase_image: %s\n%s", time.Now().UnixNano(), env.Registry, env.BaseBusybox, body),
	})
	return filepath.Join(dir, "spec.yaml")
}

func TestBuildOnlyWhenAbsent(t *testing.T) {
	env := e2e(t)
	s := uniqueSpec(t, env, "commands: [\"echo built > /built.txt\"]\n")

	out, errOut, code := runProc(t, "build", "--json", "--progress", "plain", s)
	if code != 0 {
		t.Fatalf("first build: exit %d\n%s", code, errOut)
	}
	var first buildResult
	if err := json.Unmarshal([]byte(out), &first); err != nil || !first.Built || first.Digest == "" {
		t.Fatalf("first build: %q (%v); want built with a digest", out, err)
	}
	if !strings.Contains(errOut, "echo built") {
		t.Errorf("progress on stderr does not show the step: %q", errOut)
	}
	ref, _ := name.ParseReference(first.Ref, name.Insecure)
	desc, err := remote.Head(ref)
	if err != nil || desc.Digest.String() != first.Digest {
		t.Fatalf("registry has %v (%v), build said %s", desc, err, first.Digest)
	}

	// Again, with BuildKit out of reach: the image exists, nothing is built.
	t.Setenv("BUILDKIT_HOST", "unix:///nonexistent/buildkitd.sock")
	out, errOut, code = runProc(t, "build", "--json", s)
	var second buildResult
	if code != 0 || json.Unmarshal([]byte(out), &second) != nil || second.Built || second.Digest != first.Digest {
		t.Fatalf("second build: exit %d out %q err %q; want the same digest, built false", code, out, errOut)
	}
	// A fresh cache dir asks the registry instead of the index: same answer.
	t.Setenv("ISPEC_CACHE_DIR", t.TempDir())
	out, _, code = runProc(t, "build", s)
	if code != 0 || strings.TrimSpace(out) != first.Ref+"@"+first.Digest {
		t.Errorf("build with a cold index: exit %d out %q", code, out)
	}
}

func TestBuildUnreachableBuildKit(t *testing.T) {
	env := e2e(t)
	s := uniqueSpec(t, env, "")
	_, errOut, code := runProc(t, "build", "--buildkit-addr", "unix:///nonexistent/buildkitd.sock", s)
	if code != exitUnavailable || !strings.Contains(errOut, "buildkit is not reachable at unix:///nonexistent/buildkitd.sock") || !strings.Contains(errOut, "BUILDKIT_HOST") {
		t.Errorf("exit %d, stderr %q; want 3 naming the address and how to point ispec at BuildKit", code, errOut)
	}
}

func TestBuildFailingCommand(t *testing.T) {
	env := e2e(t)
	s := uniqueSpec(t, env, "commands: [\"echo about to fail; echo the-reason >&2; exit 7\"]\n")
	tagOut, _, _ := run(t, "tag", s)
	ref := strings.TrimSpace(tagOut)
	_, errOut, code := runProc(t, "build", "--progress", "quiet", s)
	if code != exitFailed {
		t.Errorf("exit %d, want %d", code, exitFailed)
	}
	for _, want := range []string{"commands[0]", "the-reason", "exit code: 7"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("error does not contain %q:\n%s", want, errOut)
		}
	}
	assertNothingPushed(t, env, ref)
}

func TestParallelBuildsBuildOnce(t *testing.T) {
	env := e2e(t)
	s := uniqueSpec(t, env, "commands: [\"sleep 2; echo once > /once.txt\"]\n")
	tagOut, _, _ := run(t, "tag", s)
	ref := strings.TrimSpace(tagOut)

	type res struct {
		out, errOut string
		code        int
	}
	results := make([]res, 2)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o, e, c := runProc(t, "build", "--json", "--progress", "quiet", s)
			results[i] = res{o, e, c}
		}()
	}
	wg.Wait()
	built := 0
	var digests []string
	for _, r := range results {
		var b buildResult
		if r.code != 0 || json.Unmarshal([]byte(r.out), &b) != nil {
			t.Fatalf("parallel build: exit %d out %q err %q", r.code, r.out, r.errOut)
		}
		if b.Built {
			built++
		}
		digests = append(digests, b.Digest)
	}
	if built != 1 || digests[0] != digests[1] {
		t.Errorf("built %d times with digests %v; want one build and one digest", built, digests)
	}
	if n := testenv.CountManifestPuts(t, env.RegistryLog, repoOf(ref)); n != 1 {
		t.Errorf("the registry saw %d manifest pushes for %s, want 1", n, ref)
	}
}

// repoOf returns the repository path of registry/repo:tag.
func repoOf(ref string) string {
	r, err := name.ParseReference(ref)
	if err != nil {
		return ref
	}
	return r.Context().RepositoryStr()
}

// assertNothingPushed fails when ref exists or its repository saw a
// manifest push: what a failed build must leave behind.
func assertNothingPushed(t *testing.T, env *testenv.Env, ref string) {
	t.Helper()
	r, _ := name.ParseReference(ref, name.Insecure)
	if _, err := remote.Head(r); err == nil {
		t.Errorf("%s exists after a failed build", ref)
	}
	if n := testenv.CountManifestPuts(t, env.RegistryLog, repoOf(ref)); n != 0 {
		t.Errorf("%d manifest pushes after a failed build, want 0", n)
	}
}

// TestBuildVerify: the local index is trusted by default; --verify asks the
// registry, so an image the registry lost (an emptied registry) is built.
func TestBuildVerify(t *testing.T) {
	env := e2e(t)
	cacheDir := os.Getenv("ISPEC_CACHE_DIR")
	s := uniqueSpec(t, env, "commands: [\"echo verify > /verify.txt\"]\n")
	tagOut, _, _ := run(t, "tag", s)
	ref, err := name.NewTag(strings.TrimSpace(tagOut), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := cache.OpenIndex(cacheDir)
	if err != nil {
		t.Fatal(err)
	}
	stale, _ := v1.NewHash("sha256:" + strings.Repeat("a", 64))
	if err := idx.Put(ref, stale, ""); err != nil {
		t.Fatal(err)
	}
	out, _, code := runProc(t, "build", "--json", s)
	var trusted buildResult
	if code != 0 || json.Unmarshal([]byte(out), &trusted) != nil || trusted.Built || trusted.Digest != stale.String() {
		t.Fatalf("build with an indexed tag: exit %d out %q; want the indexed digest, not built", code, out)
	}
	out, errOut, code := runProc(t, "build", "--json", "--verify", "--progress", "quiet", s)
	var verified buildResult
	if code != 0 || json.Unmarshal([]byte(out), &verified) != nil || !verified.Built || verified.Digest == stale.String() {
		t.Fatalf("build --verify: exit %d out %q err %q; want a build", code, out, errOut)
	}
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// run runs ispec in-process the way main does and returns its stdout,
// stderr and exit code.
func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	ctx := context.Background()
	cmd, err := root.ExecuteContextC(ctx)
	code := finish(ctx, cmd, err, &errb)
	return out.String(), errb.String(), code
}

// isolate points the config, cache and Docker config at empty folders.
func isolate(t *testing.T) string {
	t.Helper()
	cache := t.TempDir()
	t.Setenv("ISPEC_CACHE_DIR", cache)
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	t.Setenv("ISPEC_REGISTRY", "")
	return cache
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestTagAndExitCodes(t *testing.T) {
	isolate(t)
	dir := writeFiles(t, map[string]string{
		"a.yaml":   "name: app\nregistry: ghcr.io/org\npackages: [numpy==1.26.4]\n",
		"b.yaml":   "name: app\nregistry: ghcr.io/org\npackages: [numpy==1.26.3]\n",
		"bad.yaml": "name: app\npackges: [x]\n",
	})
	a, b, bad := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml"), filepath.Join(dir, "bad.yaml")

	out, _, code := run(t, "tag", a, b)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "ghcr.io/org/app:") || lines[0] == lines[1] {
		t.Fatalf("tag a b = %q (exit %d), want two different ghcr.io/org/app refs", out, code)
	}

	out, _, _ = run(t, "tag", "--json", a)
	var id map[string]string
	if err := json.Unmarshal([]byte(out), &id); err != nil {
		t.Fatalf("tag --json: %v in %q", err, out)
	}
	for _, k := range []string{"ref", "registry", "repository", "tag", "spec_hash"} {
		if id[k] == "" {
			t.Errorf("tag --json lacks %q: %s", k, out)
		}
	}
	if id["ref"] != lines[0] || id["registry"] != "ghcr.io" || id["repository"] != "org/app" {
		t.Errorf("tag --json = %v", id)
	}

	_, errOut, code := run(t, "tag", bad)
	if code != exitInvalid || !strings.Contains(errOut, "bad.yaml:2") || !strings.Contains(errOut, `did you mean "packages"`) {
		t.Errorf("tag bad.yaml: exit %d, stderr %q; want 2 and a located error", code, errOut)
	}
	if _, _, code := run(t, "tag"); code != exitInvalid {
		t.Errorf("tag with no spec: exit %d, want 2", code)
	}
	if _, _, code := run(t, "tag", "--no-such-flag", a); code != exitInvalid {
		t.Errorf("unknown flag: exit %d, want 2", code)
	}

	out, _, code = run(t, "diff", a, b)
	if code != 1 || !strings.Contains(out, "spec.packages") || !strings.Contains(out, `+"numpy==1.26.3"`) || !strings.Contains(out, "tags differ") {
		t.Errorf("diff a b: exit %d, out %q", code, out)
	}
	out, _, code = run(t, "diff", a, a)
	if code != 0 || !strings.Contains(out, "tags are the same") {
		t.Errorf("diff a a: exit %d, out %q", code, out)
	}

	out, _, code = run(t, "explain", a)
	if code != 0 || !strings.Contains(out, `"packages":["numpy==1.26.4"]`) {
		t.Errorf("explain: exit %d, out %q", code, out)
	}
	out, _, code = run(t, "validate", a, b)
	if code != 0 || strings.Count(out, "valid") != 2 {
		t.Errorf("validate: exit %d, out %q", code, out)
	}
}

func TestConfigPrecedence(t *testing.T) {
	isolate(t)
	dir := writeFiles(t, map[string]string{"s.yaml": "name: app\n", "config.yaml": "registry: file.example.com\n"})
	s := filepath.Join(dir, "s.yaml")
	t.Setenv("ISPEC_CONFIG", filepath.Join(dir, "config.yaml"))
	if out, _, _ := run(t, "tag", s); !strings.HasPrefix(out, "file.example.com/app:") {
		t.Errorf("config file: %q", out)
	}
	t.Setenv("ISPEC_REGISTRY", "env.example.com")
	if out, _, _ := run(t, "tag", s); !strings.HasPrefix(out, "env.example.com/app:") {
		t.Errorf("env over config file: %q", out)
	}
	if out, _, _ := run(t, "tag", "--registry", "flag.example.com", s); !strings.HasPrefix(out, "flag.example.com/app:") {
		t.Errorf("flag over env: %q", out)
	}
}

// faulty wraps a registry handler; fail, when set, answers instead. The
// registry is served on other goroutines: use setFail and count.
type faulty struct {
	next http.Handler
	mu   sync.Mutex
	fail func(w http.ResponseWriter, r *http.Request) bool
	hits int
}

func (f *faulty) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.hits++
	fail := f.fail
	f.mu.Unlock()
	if fail != nil && fail(w, r) {
		return
	}
	f.next.ServeHTTP(w, r)
}

func (f *faulty) setFail(fn func(w http.ResponseWriter, r *http.Request) bool) {
	f.mu.Lock()
	f.fail = fn
	f.mu.Unlock()
}

func (f *faulty) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.hits
}

func TestExistsAndLock(t *testing.T) {
	isolate(t)
	h := &faulty{next: registry.New()}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")

	// A base image to pin.
	base, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	base, _ = mutate.ConfigFile(base, &v1.ConfigFile{OS: "linux", Architecture: "amd64"})
	baseRef := host + "/fixtures/base:latest"
	push(t, baseRef, base)

	dir := writeFiles(t, map[string]string{
		"a.yaml": "name: app\nbase_image: " + baseRef + "\n",
		"b.yaml": "name: other\nbase_image: " + baseRef + "\n",
	})
	a, b := filepath.Join(dir, "a.yaml"), filepath.Join(dir, "b.yaml")
	t.Setenv("ISPEC_REGISTRY", host+"/team")

	out, errOut, code := run(t, "exists", a)
	if code != exitAbsent || out != "" || !strings.Contains(errOut, "absent") {
		t.Fatalf("exists before push: exit %d out %q err %q; want 1 and absent", code, out, errOut)
	}

	tagOut, _, _ := run(t, "tag", a)
	img, _ := random.Image(64, 1)
	push(t, strings.TrimSpace(tagOut), img)
	d, _ := img.Digest()

	out, _, code = run(t, "exists", a)
	if code != 0 || strings.TrimSpace(out) != strings.TrimSpace(tagOut)+"@"+d.String() {
		t.Fatalf("exists after push: exit %d out %q; want %s@%s", code, out, strings.TrimSpace(tagOut), d)
	}

	// Known tags are answered from the local index, without the registry.
	h.setFail(func(w http.ResponseWriter, r *http.Request) bool {
		http.Error(w, "down for maintenance", http.StatusInternalServerError)
		return true
	})
	before := h.count()
	out, _, code = run(t, "exists", a)
	if code != 0 || h.count() != before || !strings.Contains(out, d.String()) {
		t.Errorf("indexed exists: exit %d, %d registry hits; want 0 and none", code, h.count()-before)
	}
	// --verify asks again: a failing registry is unknown (3), never exists.
	// A body that is no registry error is not echoed: the status is.
	_, errOut, code = run(t, "exists", "--verify", a)
	if code != exitUnavailable || !strings.Contains(errOut, "500 Internal Server Error") || strings.Contains(errOut, "down for maintenance") {
		t.Errorf("exists --verify on a failing registry: exit %d err %q; want 3 with the registry's status, not its body", code, errOut)
	}
	// Absent and unknown together: unknown wins.
	out, errOut, code = run(t, "exists", "--json", a, b)
	if code != exitUnavailable {
		t.Errorf("exists a b with b unknown: exit %d, want 3 (%s %s)", code, out, errOut)
	}
	var states []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var r existsResult
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("exists --json line %q: %v", l, err)
		}
		states = append(states, r.State)
	}
	if strings.Join(states, ",") != "exists,unknown" {
		t.Errorf("exists --json states = %v, want exists,unknown", states)
	}
	h.setFail(nil)

	// Lock pins the base; the tag covers the pin; --check sees upstream move.
	before0, _, _ := run(t, "tag", a)
	if out, _, code := run(t, "lock", a); code != 0 || !strings.HasSuffix(strings.TrimSpace(out), "a.yaml.lock") {
		t.Fatalf("lock: exit %d out %q", code, out)
	}
	locked, _, _ := run(t, "tag", a)
	if locked == before0 {
		t.Errorf("the tag did not change when the lock pinned the base")
	}
	if out, _, code := run(t, "lock", "--check", a); code != 0 || out != "" {
		t.Errorf("lock --check with no drift: exit %d out %q", code, out)
	}
	moved, _ := random.Image(64, 1)
	moved, _ = mutate.ConfigFile(moved, &v1.ConfigFile{OS: "linux", Architecture: "amd64"})
	push(t, baseRef, moved)
	out, _, code = run(t, "lock", "--check", a)
	if code != exitAbsent || !strings.Contains(out, "moved to") {
		t.Errorf("lock --check after upstream moved: exit %d out %q; want 1 naming the drift", code, out)
	}
	if again, _, _ := run(t, "tag", a); again != locked {
		t.Errorf("the tag changed while the lock pins the base")
	}
}

func push(t *testing.T, ref string, img v1.Image) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
}

package testenv

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
)

// TestEnvIsUp fails loudly in CI when the development environment is broken:
// BuildKit answers and runs a container, the registry answers, the base
// image fixtures exist, and the Python index serves the demo wheels.
func TestEnvIsUp(t *testing.T) {
	env := Load(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	t.Run("buildkit", func(t *testing.T) {
		c, err := client.New(ctx, env.BuildkitHost)
		if err != nil {
			t.Fatalf("connect to buildkitd at %s: %v", env.BuildkitHost, err)
		}
		defer c.Close()
		workers, err := c.ListWorkers(ctx)
		if err != nil {
			t.Fatalf("list workers: %v", err)
		}
		if len(workers) == 0 {
			t.Fatal("buildkitd has no workers")
		}
		// A RUN step on the busybox fixture proves runc, the snapshotter and
		// pulls from the loopback registry work; the nonce defeats the cache.
		cmd := fmt.Sprintf("echo ok-%d > /ok", time.Now().UnixNano())
		st := llb.Image(env.BaseBusybox).Run(llb.Args([]string{"/bin/sh", "-c", cmd})).Root()
		def, err := st.Marshal(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Solve(ctx, def, client.SolveOpt{}, nil); err != nil {
			t.Fatalf("solve a RUN on %s: %v (see %s)", env.BaseBusybox, err, env.BuildkitdLog)
		}
	})

	t.Run("registry", func(t *testing.T) {
		resp, err := http.Get("http://" + env.Registry + "/v2/")
		if err != nil {
			t.Fatalf("registry: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("registry /v2/: %s", resp.Status)
		}
		if _, err := os.Stat(env.RegistryLog); err != nil {
			t.Errorf("registry log: %v", err)
		}
	})

	t.Run("fixtures", func(t *testing.T) {
		for _, ref := range []string{env.BasePython, env.BaseBusybox} {
			r, err := name.ParseReference(ref)
			if err != nil {
				t.Fatal(err)
			}
			img, err := remote.Image(r, remote.WithContext(ctx))
			if err != nil {
				t.Errorf("base image %s: %v", ref, err)
				continue
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Errorf("config of %s: %v", ref, err)
				continue
			}
			if cf.OS != "linux" || cf.Architecture == "" {
				t.Errorf("%s: platform %s/%s", ref, cf.OS, cf.Architecture)
			}
			if !strings.Contains(strings.Join(cf.Config.Env, " "), "PATH=") {
				t.Errorf("%s: no PATH in config env %v", ref, cf.Config.Env)
			}
		}
	})

	t.Run("index", func(t *testing.T) {
		resp, err := http.Get(env.IndexURL + "/ispec-demo-a/")
		if err != nil {
			t.Fatalf("index: %v", err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "ispec_demo_a-1.0.0-py3-none-any.whl#sha256=") {
			t.Fatalf("index page for ispec-demo-a: %s\n%s", resp.Status, body)
		}
	})
}

const sampleLog = `time="2026-01-01T00:00:00Z" level=info msg="response completed" http.request.method=PUT http.request.uri=/v2/fixtures/busybox/manifests/latest http.response.status=201
127.0.0.1 - - [01/Jan/2026:00:00:00 +0000] "PUT /v2/fixtures/busybox/manifests/latest HTTP/1.1" 201 0 "" "agent"
127.0.0.1 - - [01/Jan/2026:00:00:01 +0000] "PUT /v2/team/app/manifests/abc123 HTTP/1.1" 201 0 "" "buildkit/v0.34"
127.0.0.1 - - [01/Jan/2026:00:00:02 +0000] "PUT /v2/team/app/manifests/sha256:0123 HTTP/1.1" 201 0 "" "buildkit/v0.34"
127.0.0.1 - - [01/Jan/2026:00:00:03 +0000] "PUT /v2/team/app/manifests/bad HTTP/1.1" 400 0 "" "agent"
127.0.0.1 - - [01/Jan/2026:00:00:04 +0000] "HEAD /v2/team/app/manifests/abc123 HTTP/1.1" 200 0 "" "agent"
127.0.0.1 - - [01/Jan/2026:00:00:05 +0000] "PUT /v2/team/app/blobs/uploads/x HTTP/1.1" 201 0 "" "agent"
127.0.0.1 - - [01/Jan/2026:00:00:06 +0000] "PUT /v2/team/app-other/manifests/v1 HTTP/1.1" 201 0 "" "agent"
`

func TestCountManifestPuts(t *testing.T) {
	p := filepath.Join(t.TempDir(), "registry.log")
	if err := os.WriteFile(p, []byte(sampleLog), 0o644); err != nil {
		t.Fatal(err)
	}
	for repo, want := range map[string]int{
		"fixtures/busybox":         1, // logged twice (app and access log), counted once
		"team/app":                 2,
		"127.0.0.1:5000/team/app":  2,
		"team/app-other":           1,
		"localhost/team/app-other": 1,
		"nothing/here":             0,
	} {
		if got := CountManifestPuts(t, p, repo); got != want {
			t.Errorf("CountManifestPuts(%q) = %d, want %d", repo, got, want)
		}
	}

	// The application log alone is enough too.
	appOnly := filepath.Join(t.TempDir(), "app.log")
	var lines []string
	for i := 0; i < 3; i++ {
		lines = append(lines, fmt.Sprintf(`time="x" level=info msg="response completed" http.request.method=PUT http.request.uri=/v2/a/b/manifests/t%d http.response.status=201`, i))
	}
	lines = append(lines, `time="x" level=info msg="response completed" http.request.method=PUT http.request.uri=/v2/a/b/manifests/t9 http.response.status=400`)
	if err := os.WriteFile(appOnly, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := CountManifestPuts(t, appOnly, "a/b"); got != 3 {
		t.Errorf("app log only: %d, want 3", got)
	}
}

// fakeTB records Skip and Fatal instead of stopping the test.
type fakeTB struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (f *fakeTB) Helper()                      {}
func (f *fakeTB) Skip(args ...any)             { f.skipped, f.msg = true, fmt.Sprint(args...) }
func (f *fakeTB) Fatal(args ...any)            { f.failed, f.msg = true, fmt.Sprint(args...) }
func (f *fakeTB) Skipf(s string, args ...any)  { f.Skip(fmt.Sprintf(s, args...)) }
func (f *fakeTB) Fatalf(s string, args ...any) { f.Fatal(fmt.Sprintf(s, args...)) }

func TestLoadWithoutEnv(t *testing.T) {
	if testing.Short() {
		t.Skip("under -short Load skips every test before it looks for the environment")
	}
	t.Setenv("ISPEC_DEVENV_DIR", t.TempDir())

	t.Setenv("CI", "")
	f := &fakeTB{TB: t}
	if env := Load(f); env != nil || !f.skipped || f.failed {
		t.Fatalf("outside CI: env=%v skipped=%v failed=%v", env, f.skipped, f.failed)
	}
	if !strings.Contains(f.msg, "make env-up") {
		t.Errorf("message lacks the hint: %s", f.msg)
	}

	t.Setenv("CI", "true")
	f = &fakeTB{TB: t}
	if env := Load(f); env != nil || f.skipped || !f.failed {
		t.Fatalf("in CI: env=%v skipped=%v failed=%v", env, f.skipped, f.failed)
	}
}

func TestLoadStaleEnvFile(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("ISPEC_DEVENV_DIR", dir)
	t.Setenv("CI", "")
	// A registry port nothing listens on: the env file is stale.
	stale := `{"BUILDKIT_HOST":"unix:///nonexistent.sock","ISPEC_TEST_REGISTRY":"127.0.0.1:1",
"ISPEC_TEST_BASE_PYTHON":"x","ISPEC_TEST_BASE_BUSYBOX":"y","ISPEC_TEST_PYPI_INDEX":"http://127.0.0.1:1/simple"}`
	if err := os.WriteFile(filepath.Join(dir, "env.json"), []byte(stale), 0o644); err != nil {
		t.Fatal(err)
	}
	f := &fakeTB{TB: t}
	if env := Load(f); env != nil || !f.skipped {
		t.Fatalf("stale env: env=%v skipped=%v", env, f.skipped)
	}
	if !strings.Contains(f.msg, "does not answer") {
		t.Errorf("message: %s", f.msg)
	}
}

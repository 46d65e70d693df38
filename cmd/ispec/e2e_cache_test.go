package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// cacheExists tells whether a registry cache reference was written.
func cacheExists(t *testing.T, ref string) bool {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	_, err = remote.Head(r)
	return err == nil
}

// TestBuildRegistryCache: pushes export the registry cache next to the
// image by default; --no-registry-cache and `registry-cache: false` turn
// it off; --output builds leave it alone unless --registry-cache asks;
// --cache-registry puts it elsewhere.
func TestBuildRegistryCache(t *testing.T) {
	env := e2e(t)
	spec := func(what string) (string, string) {
		t.Helper()
		repo := fmt.Sprintf("cli-regcache-%d", time.Now().UnixNano())
		dir := writeFiles(t, map[string]string{
			"spec.yaml": fmt.Sprintf("name: app\nregistry: %s/%s\nbase_image: %s\ncommands: [\"echo %s > /x\"]\n", env.Registry, repo, env.BaseBusybox, what),
		})
		return filepath.Join(dir, "spec.yaml"), env.Registry + "/" + repo + "/app:ispec-cache"
	}

	t.Run("on by default for pushes", func(t *testing.T) {
		s, cache := spec("default")
		_, errOut, code := run(t, "build", "--progress", "quiet", s)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if !cacheExists(t, cache) {
			t.Errorf("%s was not exported", cache)
		}
		if strings.Contains(errOut, "warning") {
			t.Errorf("stderr: %s", errOut)
		}
	})
	t.Run("--no-registry-cache", func(t *testing.T) {
		s, cache := spec("flag-off")
		if _, errOut, code := run(t, "build", "--progress", "quiet", "--no-registry-cache", s); code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if cacheExists(t, cache) {
			t.Errorf("%s was exported with --no-registry-cache", cache)
		}
	})
	t.Run("config registry-cache: false", func(t *testing.T) {
		s, cache := spec("config-off")
		cfg := filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(cfg, []byte("registry-cache: false\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, errOut, code := run(t, "build", "--config", cfg, "--progress", "quiet", s); code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if cacheExists(t, cache) {
			t.Errorf("%s was exported with registry-cache: false", cache)
		}
	})
	t.Run("--output", func(t *testing.T) {
		s, cache := spec("output")
		tar := filepath.Join(t.TempDir(), "img.tar")
		if _, errOut, code := run(t, "build", "--progress", "quiet", "--output", "oci:"+tar, s); code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if cacheExists(t, cache) {
			t.Errorf("an --output build exported %s unasked", cache)
		}
		if _, errOut, code := run(t, "build", "--progress", "quiet", "--registry-cache", "--output", "oci:"+tar, s); code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if !cacheExists(t, cache) {
			t.Errorf("--registry-cache --output did not export %s", cache)
		}
	})
	t.Run("--cache-registry", func(t *testing.T) {
		s, cache := spec("elsewhere")
		shared := fmt.Sprintf("%s/shared-%d", env.Registry, time.Now().UnixNano())
		t.Setenv("ISPEC_CACHE_REGISTRY", shared)
		if _, errOut, code := run(t, "build", "--progress", "quiet", s); code != 0 {
			t.Fatalf("exit %d: %s", code, errOut)
		}
		if cacheExists(t, cache) {
			t.Errorf("%s was exported next to the image", cache)
		}
		moved := shared + "/" + strings.TrimPrefix(cache, env.Registry+"/")
		if !cacheExists(t, moved) {
			t.Errorf("%s was not exported", moved)
		}
	})
	t.Run("refused", func(t *testing.T) {
		// Nothing listens there: the build succeeds and warns once.
		s, _ := spec("refused")
		out, errOut, code := run(t, "build", "--progress", "quiet", "--cache-registry", "127.0.0.1:1/nowhere", s)
		if code != 0 || !strings.Contains(out, "@sha256:") {
			t.Fatalf("exit %d, stdout %q: %s", code, out, errOut)
		}
		if n := strings.Count(errOut, "ispec: warning:"); n != 1 || !strings.Contains(errOut, "registry cache not written") {
			t.Errorf("want one warning, stderr:\n%s", errOut)
		}
	})
}

// TestBuildRegistryCacheUsage: a bad cache registry is a usage error
// before any work; contradicting flags too.
func TestBuildRegistryCacheUsage(t *testing.T) {
	isolate(t)
	dir := writeFiles(t, map[string]string{"spec.yaml": "name: app\nregistry: reg.lan/org\nbase_image: busybox\n"})
	s := filepath.Join(dir, "spec.yaml")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--cache-registry", "https://cache.lan", s}, "without a scheme"},
		{[]string{"--cache-registry", "cache.lan//ci", s}, "empty path"},
		{[]string{"--cache-registry", "cache.lan/UPPER", s}, "cache-registry"},
		{[]string{"--registry-cache", "--no-registry-cache", s}, "give one"},
	} {
		_, errOut, code := run(t, append([]string{"build", "--buildkit-addr", "unix:///nonexistent.sock"}, tc.args...)...)
		if code != exitInvalid || !strings.Contains(errOut, tc.want) {
			t.Errorf("build %q: exit %d, stderr %q; want exit 2 saying %q", tc.args, code, errOut, tc.want)
		}
	}
}

package main

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ispec-dev/ispec/internal/imagediff"
	"github.com/ispec-dev/ispec/internal/testenv"
)

// TestReproducibleRebuild builds a spec whose inputs are all pinned (base
// by digest, apt and pip versions, a local index, a command, a copied
// file), then builds it again from scratch with --force --no-cache, and
// wants the same manifest digest. When the digests differ it names the
// first file that differs. Every run pushes to a new repository, so it
// depends on nothing an earlier run left behind.
func TestReproducibleRebuild(t *testing.T) {
	env := e2e(t)
	base := pinnedRef(t, env.BasePython)
	jq := os.Getenv("ISPEC_TEST_REPRO_JQ")
	if jq == "" {
		jq = aptCandidate(t, env, base, "jq")
	}
	repo := fmt.Sprintf("%s/repro-%d", env.Registry, time.Now().UnixNano())
	dir := writeFiles(t, map[string]string{
		"spec.yaml": fmt.Sprintf(`name: app
registry: %s
base_image: %s
apt_packages: ["jq=%s"]
packages: ["ispec-demo-a==1.0.0", "ispec-demo-b==2.0.0"]
pip_index: %s
env: {APP_MODE: repro}
commands:
  - "python -c 'import ispec_demo_a, ispec_demo_b' > /imported.txt && jq --version > /jq-version.txt"
copy: [conf.txt]
workdir: /app
`, repo, base, jq, env.IndexURL),
		"conf.txt": "setting=1\n",
	})
	s := filepath.Join(dir, "spec.yaml")

	first := buildJSON(t, s, "--progress", "plain")
	if !first.Built {
		t.Fatalf("first build: %+v; want built (the repository is new)", first)
	}
	img := testenv.Pull(t, first.Ref+"@"+first.Digest)
	checkNoMachineFiles(t, img, testenv.Pull(t, base))

	second, errOut := buildJSONErr(t, s, "--force", "--no-cache", "--progress", "plain")
	if !second.Built || second.Ref != first.Ref {
		t.Fatalf("rebuild: %+v; want built again at %s", second, first.Ref)
	}
	if !strings.Contains(errOut, "Setting up jq ("+jq+")") {
		t.Errorf("the rebuild's progress does not show apt installing jq %s again; was the apt step reused?\n%s", jq, tail(errOut, 40))
	}
	if second.Digest != first.Digest {
		d, err := imagediff.Compare(img, testenv.Pull(t, second.Ref+"@"+second.Digest))
		if err != nil {
			t.Fatalf("rebuild without cache gave %s, first build %s; comparing them: %v", second.Digest, first.Digest, err)
		}
		t.Fatalf("rebuild without cache gave %s, first build %s; first difference: %v", second.Digest, first.Digest, d)
	}
	t.Logf("built %s@%s twice", first.Ref, first.Digest)
}

// aptCandidate returns the version of a Debian package that apt installs
// on base today, read from the dpkg database of an image that installs it
// unpinned, so that the test pins a version the mirror still serves.
func aptCandidate(t *testing.T, env *testenv.Env, base, pkg string) string {
	t.Helper()
	dir := writeFiles(t, map[string]string{"spec.yaml": fmt.Sprintf("name: probe\nregistry: %s/repro-probe-%d\nbase_image: %s\napt_packages: [%s]\n",
		env.Registry, time.Now().UnixNano(), base, pkg)})
	res := buildJSON(t, filepath.Join(dir, "spec.yaml"), "--progress", "quiet")
	status, ok := testenv.ImageFile(t, testenv.Pull(t, res.Ref+"@"+res.Digest), "var/lib/dpkg/status")
	if !ok {
		t.Fatal("no dpkg status in the probe image")
	}
	for _, para := range strings.Split(status, "\n\n") {
		if !strings.HasPrefix(para, "Package: "+pkg+"\n") {
			continue
		}
		for _, line := range strings.Split(para, "\n") {
			if v, ok := strings.CutPrefix(line, "Version: "); ok {
				return v
			}
		}
	}
	t.Fatalf("%s is not in the probe image's dpkg status", pkg)
	return ""
}

// buildJSON runs `ispec build --json` on one spec and returns its result.
func buildJSON(t *testing.T, specPath string, flags ...string) buildResult {
	t.Helper()
	res, _ := buildJSONErr(t, specPath, flags...)
	return res
}

// buildJSONErr is buildJSON that also returns stderr.
func buildJSONErr(t *testing.T, specPath string, flags ...string) (buildResult, string) {
	t.Helper()
	args := append(append([]string{"build", "--json"}, flags...), specPath)
	out, errOut, code := runProc(t, args...)
	var res buildResult
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.Digest == "" {
		t.Fatalf("ispec %s: exit %d, stdout %q\n%s", strings.Join(args, " "), code, out, tail(errOut, 60))
	}
	return res, errOut
}

// pinnedRef returns ref by the digest the registry has for it now.
func pinnedRef(t *testing.T, ref string) string {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Head(r)
	if err != nil {
		t.Fatalf("resolving %s: %v", ref, err)
	}
	return r.Context().Name() + "@" + desc.Digest.String()
}

// checkNoMachineFiles fails when a layer the build added (those above the
// base's) holds a log, a package cache or list, or a build-time mount.
func checkNoMachineFiles(t *testing.T, img, base v1.Image) {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	bl, err := base.Layers()
	if err != nil {
		t.Fatal(err)
	}
	bad := []string{"var/log/", "var/cache/apt/", "var/lib/apt/lists/", "var/cache/ldconfig/", "root/.cache/", "run/ispec/", "tmp/"}
	for i := len(bl); i < len(layers); i++ {
		testenv.LayerEntries(t, layers[i], func(p string, h *tar.Header, _ io.Reader) {
			if h.Typeflag == tar.TypeDir || strings.HasPrefix(filepath.Base(p), ".wh.") {
				return // a folder, or the removal of a base image's file
			}
			for _, b := range bad {
				if strings.HasPrefix(p, b) {
					t.Errorf("layer %d holds %s", i, p)
				}
			}
		})
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

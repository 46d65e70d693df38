package shiptest

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ispec-dev/ispec/internal/testenv"
)

// buildctl runs the environment's buildctl against its daemon and returns
// the combined output, failing the test with the output's tail on error.
func buildctl(t *testing.T, env *testenv.Env, args ...string) string {
	t.Helper()
	cmd := exec.Command(env.BuildctlPath(t), append([]string{"--addr", env.BuildkitHost}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("buildctl %s: %v\n%s", strings.Join(args, " "), err, tail(string(out), 60))
	}
	return string(out)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestDockerfile builds ispec's image from the top-level Dockerfile with the
// base images replaced by the environment's fixtures, checks what the image
// holds and how it is configured, and runs `ispec version` inside it.
func TestDockerfile(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	env := testenv.Load(t)
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	goImage := env.GoImage(t)
	goproxy := testenv.ModuleProxy(t)

	version := fmt.Sprintf("v0.0.0-shiptest.%d", time.Now().UnixNano())
	revision := strings.Repeat("0123456789", 4)
	ref := env.Registry + "/shiptest/ispec:" + strings.TrimPrefix(version, "v0.0.0-")
	meta := filepath.Join(t.TempDir(), "metadata.json")
	start := time.Now()
	buildctl(t, env, "build", "--progress", "plain", "--frontend", "dockerfile.v0",
		"--local", "context="+root, "--local", "dockerfile="+root,
		"--opt", "build-arg:GO_IMAGE="+goImage,
		"--opt", "build-arg:RUNTIME_IMAGE="+env.BaseBusybox,
		"--opt", "build-arg:GOPROXY="+goproxy+",off",
		"--opt", "build-arg:VERSION="+version,
		"--opt", "build-arg:REVISION="+revision,
		"--output", "type=image,name="+ref+",push=true,registry.insecure=true",
		"--metadata-file", meta)
	t.Logf("image built and pushed in %s", time.Since(start).Round(time.Millisecond))
	digest := metadataDigest(t, meta)
	pinned := ref[:strings.LastIndex(ref, ":")] + "@" + digest

	img := testenv.Pull(t, pinned)
	t.Run("config", func(t *testing.T) { checkConfig(t, img, version, revision) })
	t.Run("contents", func(t *testing.T) { checkContents(t, env, img) })
	t.Run("runs", func(t *testing.T) { checkRuns(t, env, pinned, version) })
}

func metadataDigest(t *testing.T, p string) string {
	t.Helper()
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("buildctl metadata: %v", err)
	}
	d, _ := m["containerimage.digest"].(string)
	if !strings.HasPrefix(d, "sha256:") {
		t.Fatalf("buildctl metadata has no image digest: %s", data)
	}
	return d
}

// checkConfig: a non-root numeric user, `ispec serve` by default, the two
// ports, and the OCI labels filled from the build arguments.
func checkConfig(t *testing.T, img v1.Image, version, revision string) {
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	c := cf.Config
	if c.User != "65532:65532" {
		t.Errorf("User = %q, want 65532:65532 (non-root, numeric)", c.User)
	}
	if !slices.Equal(c.Entrypoint, []string{"ispec"}) || !slices.Equal(c.Cmd, []string{"serve"}) {
		t.Errorf("Entrypoint, Cmd = %q, %q; want [ispec], [serve]", c.Entrypoint, c.Cmd)
	}
	for _, p := range []string{"8080/tcp", "9090/tcp"} {
		if _, ok := c.ExposedPorts[p]; !ok {
			t.Errorf("port %s not exposed (have %v)", p, c.ExposedPorts)
		}
	}
	if len(c.ExposedPorts) != 2 {
		t.Errorf("exposed ports = %v, want exactly 8080 and 9090", c.ExposedPorts)
	}
	want := map[string]string{
		"org.opencontainers.image.title":    "ispec",
		"org.opencontainers.image.version":  version,
		"org.opencontainers.image.revision": revision,
		"org.opencontainers.image.source":   "https://github.com/ispec-dev/ispec",
		"org.opencontainers.image.licenses": "Apache-2.0",
	}
	for k, v := range want {
		if got := c.Labels[k]; got != v {
			t.Errorf("label %s = %q, want %q", k, got, v)
		}
	}
	if !slices.Contains(c.Env, "ISPEC_CACHE_DIR=/var/cache/ispec") {
		t.Errorf("Env = %q, want ISPEC_CACHE_DIR=/var/cache/ispec", c.Env)
	}
}

// checkContents: the layers on top of the runtime base hold the binary, the
// CA bundle and the (empty, non-root owned) cache folder, nothing else; in
// particular no sources, no Go toolchain, no module cache.
func checkContents(t *testing.T, env *testenv.Env, img v1.Image) {
	base := testenv.Pull(t, env.BaseBusybox)
	baseLayers, err := base.Layers()
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) <= len(baseLayers) {
		t.Fatalf("image has %d layers, its base %d", len(layers), len(baseLayers))
	}
	var files []string
	cacheOwner := -1
	for _, l := range layers[len(baseLayers):] {
		testenv.LayerEntries(t, l, func(name string, h *tar.Header, _ io.Reader) {
			name = strings.TrimSuffix(name, "/")
			switch {
			case h.Typeflag == tar.TypeDir && name == "var/cache/ispec":
				cacheOwner = h.Uid
			case h.Typeflag != tar.TypeDir:
				files = append(files, name)
			}
		})
	}
	slices.Sort(files)
	if want := []string{"etc/ssl/certs/ca-certificates.crt", "usr/local/bin/ispec"}; !slices.Equal(files, want) {
		t.Errorf("files added to the runtime base = %q, want %q", files, want)
	}
	if cacheOwner != 65532 {
		t.Errorf("var/cache/ispec owner = %d, want 65532", cacheOwner)
	}
	if ca, ok := testenv.ImageFile(t, img, "etc/ssl/certs/ca-certificates.crt"); !ok || !strings.Contains(ca, "BEGIN CERTIFICATE") {
		t.Errorf("no CA certificates in the image")
	}
}

// checkRuns runs `ispec version` inside the image, as the image's user and
// with its PATH, through a BuildKit RUN step on top of it. The runtime base
// has no libc, so this also shows the binary is static. A shell to capture
// the output comes from the busybox fixture, mounted for that step only.
func checkRuns(t *testing.T, env *testenv.Env, image, version string) {
	dir := t.TempDir()
	dockerfile := fmt.Sprintf(`FROM %s AS run
RUN --mount=type=bind,from=%s,target=/.busybox ["/.busybox/bin/busybox", "sh", "-c", "ispec version > /tmp/version && /.busybox/bin/busybox id -u > /tmp/uid && /.busybox/bin/busybox touch /var/cache/ispec/writable"]
FROM scratch
COPY --from=run /tmp/version /tmp/uid /
`, image, env.BaseBusybox)
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	buildctl(t, env, "build", "--progress", "plain", "--frontend", "dockerfile.v0",
		"--local", "context="+dir, "--local", "dockerfile="+dir,
		"--output", "type=local,dest="+out)
	got, err := os.ReadFile(filepath.Join(out, "version"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(got)), "\n")
	if lines[0] != "ispec "+version {
		t.Errorf("ispec version printed %q first, want %q", lines[0], "ispec "+version)
	}
	if !strings.Contains(string(got), " linux/"+runtime.GOARCH) {
		t.Errorf("ispec version output lacks linux/%s:\n%s", runtime.GOARCH, got)
	}
	uid, err := os.ReadFile(filepath.Join(out, "uid"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(uid)) != "65532" {
		t.Errorf("ispec ran as uid %q, want 65532", strings.TrimSpace(string(uid)))
	}
}

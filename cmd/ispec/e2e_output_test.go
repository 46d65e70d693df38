package main

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/ispec-dev/ispec/builder"
	"github.com/ispec-dev/ispec/internal/testenv"
)

// buildInProc runs `ispec build --json --progress quiet ARGS...` in-process
// and decodes its one result line.
func buildInProc(t *testing.T, args ...string) buildResult {
	t.Helper()
	out, errOut, code := run(t, append([]string{"build", "--json", "--progress", "quiet"}, args...)...)
	var res buildResult
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil {
		t.Fatalf("build %q: exit %d\nstdout %q\nstderr %s", args, code, out, errOut)
	}
	return res
}

// untarTo unpacks a tarball into a new folder.
func untarTo(t *testing.T, file string) string {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir := t.TempDir()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return dir
		}
		if err != nil {
			t.Fatalf("reading %s: %v", file, err)
		}
		p := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(p, dir+string(filepath.Separator)) {
			t.Fatalf("%s: entry %q escapes the folder", file, h.Name)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			dt, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, dt, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// ociIndex opens an OCI layout tarball and validates its index.
func ociIndex(t *testing.T, file string) v1.ImageIndex {
	t.Helper()
	p, err := layout.FromPath(untarTo(t, file))
	if err != nil {
		t.Fatalf("%s is not an OCI layout: %v", file, err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Index(idx); err != nil {
		t.Fatalf("validate.Index(%s): %v", file, err)
	}
	return idx
}

// folderHolds fails unless dir holds exactly names (no temporary files).
func folderHolds(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	slices.Sort(got)
	slices.Sort(names)
	if !slices.Equal(got, names) {
		t.Errorf("%s holds %q, want %q", dir, got, names)
	}
}

func TestBuildOutputUsage(t *testing.T) {
	isolate(t)
	dir := writeFiles(t, map[string]string{
		"one.yaml": "name: app\nbase_image: busybox\n",
		"two.yaml": "name: app\nbase_image: busybox\nplatform: [linux/amd64, linux/arm64]\n",
	})
	one, two := filepath.Join(dir, "one.yaml"), filepath.Join(dir, "two.yaml")
	out := filepath.Join(dir, "img.tar")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--output", "tar:" + out, one}, "oci:PATH or docker:PATH"},
		{[]string{"--output", "oci:", one}, "oci:PATH or docker:PATH"},
		{[]string{"--output", "oci:" + out, one, two}, "give one spec"},
		{[]string{"--output", "docker:" + out, two}, "one platform"},
		{[]string{"--output", "oci:" + filepath.Join(dir, "missing", "img.tar"), one}, "no such file"},
		{[]string{"--output", "oci:" + dir, one}, "is a folder"},
	} {
		_, errOut, code := run(t, append([]string{"build", "--buildkit-addr", "unix:///nonexistent.sock"}, tc.args...)...)
		if code != exitInvalid || !strings.Contains(errOut, tc.want) {
			t.Errorf("build %q: exit %d, stderr %q; want exit 2 saying %q", tc.args, code, errOut, tc.want)
		}
	}
	folderHolds(t, dir, "one.yaml", "two.yaml")

	help, _, _ := run(t, "build", "--help")
	for _, want := range []string{"--output", "docker load", "3 when a registry\n(the image's or its base's) or BuildKit is unavailable, or BuildKit's\nworkers cannot build a platform", "130 or 143"} {
		if !strings.Contains(help, want) {
			t.Errorf("build --help does not say %q", want)
		}
	}
}

// TestBuildOutputTarballs: --output writes an OCI layout and a docker
// tarball that go-containerregistry validates, without a registry: one
// spec names none, the other one that does not answer.
func TestBuildOutputTarballs(t *testing.T) {
	env := e2e(t)
	id := time.Now().UnixNano()
	dir := writeFiles(t, map[string]string{
		"local.yaml":  fmt.Sprintf("name: out-%d\nbase_image: %s\ncommands: [\"echo local > /out.txt\"]\n", id, env.BaseBusybox),
		"remote.yaml": fmt.Sprintf("name: out-%d\nregistry: 127.0.0.1:1/nowhere\nbase_image: %s\ncommands: [\"echo remote > /out.txt\"]\n", id, env.BaseBusybox),
		"fail.yaml":   fmt.Sprintf("name: out-%d\nbase_image: %s\ncommands: [\"echo no; exit 3\"]\n", id, env.BaseBusybox),
	})
	outDir := t.TempDir()

	t.Run("oci", func(t *testing.T) {
		file := filepath.Join(outDir, "local.oci.tar")
		res := buildInProc(t, "--output", "oci:"+file, filepath.Join(dir, "local.yaml"))
		if !res.Built || res.Output != "oci:"+file || !strings.HasPrefix(res.Ref, fmt.Sprintf("out-%d:", id)) {
			t.Errorf("result %+v", res)
		}
		idx := ociIndex(t, file)
		m, err := idx.IndexManifest()
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Manifests) != 1 || m.Manifests[0].Digest.String() != res.Digest {
			t.Fatalf("index.json lists %+v; want the one manifest %s", m.Manifests, res.Digest)
		}
		if got := m.Manifests[0].Annotations["org.opencontainers.image.ref.name"]; !strings.HasSuffix(res.Ref, ":"+got) && got != res.Ref {
			t.Errorf("ref name annotation %q, ref %s", got, res.Ref)
		}
		im, err := idx.Image(m.Manifests[0].Digest)
		if err != nil {
			t.Fatal(err)
		}
		if err := validate.Image(im); err != nil {
			t.Fatalf("validate.Image: %v", err)
		}
		if got := imageFile(t, im, "out.txt"); got != "local\n" {
			t.Errorf("/out.txt = %q", got)
		}
	})

	t.Run("docker", func(t *testing.T) {
		file := filepath.Join(outDir, "remote.docker.tar")
		res := buildInProc(t, "--output", "docker:"+file, filepath.Join(dir, "remote.yaml"))
		if !res.Built || !strings.HasPrefix(res.Ref, "127.0.0.1:1/nowhere/") {
			t.Errorf("result %+v", res)
		}
		tag, err := name.NewTag(res.Ref)
		if err != nil {
			t.Fatal(err)
		}
		im, err := tarball.ImageFromPath(file, &tag)
		if err != nil {
			t.Fatalf("the tarball has no image tagged %s: %v", res.Ref, err)
		}
		if err := validate.Image(im); err != nil {
			t.Fatalf("validate.Image: %v", err)
		}
		if got := imageFile(t, im, "out.txt"); got != "remote\n" {
			t.Errorf("/out.txt = %q", got)
		}
		cfg, err := im.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Config.Labels[builder.LabelSpecHash] == "" {
			t.Errorf("labels %v lack the spec hash", cfg.Config.Labels)
		}
	})

	t.Run("failed build writes nothing", func(t *testing.T) {
		file := filepath.Join(outDir, "fail.tar")
		_, errOut, code := run(t, "build", "--progress", "quiet", "--output", "oci:"+file, filepath.Join(dir, "fail.yaml"))
		if code != exitFailed || !strings.Contains(errOut, "commands[0]") {
			t.Errorf("exit %d, stderr %q; want 1 naming the step", code, errOut)
		}
	})
	folderHolds(t, outDir, "local.oci.tar", "remote.docker.tar")
}

// TestBuildCUDAStandIn builds a CUDA spec on a stand-in for NVIDIA's image,
// chosen by the CUDA base template (--cuda-base), and checks NVIDIA's env
// in the pushed image's config and in its build steps.
func TestBuildCUDAStandIn(t *testing.T) {
	env := e2e(t)
	standInRepo := fmt.Sprintf("%s/stand-in-%d/cuda", env.Registry, time.Now().UnixNano())
	pushCopy(t, env.BaseBusybox, standInRepo+":12.4.1-cudnn-runtime-ubuntu22.04")
	tmpl := standInRepo + ":{cuda}-{cudnn}runtime-ubuntu22.04"

	s := filepath.Join(writeFiles(t, map[string]string{
		"gpu.yaml": fmt.Sprintf("name: gpu\nregistry: %s/cli\ncuda: \"12.4.1\"\ncudnn: \"9\"\ncommands: [\"echo $LD_LIBRARY_PATH $NVIDIA_REQUIRE_CUDA > /cuda-env.txt\"]\n", env.Registry),
	}), "gpu.yaml")
	// The template from the environment and from the flag give one tag.
	t.Setenv("ISPEC_CUDA_BASE", tmpl)
	fromEnv, _, _ := run(t, "tag", s)
	t.Setenv("ISPEC_CUDA_BASE", "")
	fromFlag, _, _ := run(t, "tag", "--cuda-base", tmpl, s)
	if fromEnv != fromFlag || fromEnv == "" {
		t.Fatalf("tag with ISPEC_CUDA_BASE %q, with --cuda-base %q", fromEnv, fromFlag)
	}

	res := buildInProc(t, "--cuda-base", tmpl, s)
	im := testenv.Pull(t, res.Ref+"@"+res.Digest)
	if err := validate.Image(im); err != nil {
		t.Fatalf("validate.Image: %v", err)
	}
	cfg, err := im.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"NVIDIA_VISIBLE_DEVICES=all",
		"NVIDIA_DRIVER_CAPABILITIES=compute,utility",
		"NVIDIA_REQUIRE_CUDA=cuda>=12.4",
		"CUDA_VERSION=12.4.1",
		"LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64",
	} {
		if !slices.Contains(cfg.Config.Env, want) {
			t.Errorf("image env %q lacks %s", cfg.Config.Env, want)
		}
	}
	if got, want := cfg.Config.Labels["org.opencontainers.image.base.name"], standInRepo+":12.4.1-cudnn-runtime-ubuntu22.04"; got != want {
		t.Errorf("base name label %q, want %q", got, want)
	}
	if got := imageFile(t, im, "cuda-env.txt"); got != "/usr/local/nvidia/lib:/usr/local/nvidia/lib64 cuda>=12.4\n" {
		t.Errorf("the command saw %q", got)
	}
}

// TestBuildMultiPlatform builds a spec for two platforms the worker
// builds (amd64 and its v2 variant, both native on an x86-64 host) and
// checks the pushed image index and the OCI layout of the same spec.
func TestBuildMultiPlatform(t *testing.T) {
	env := e2e(t)
	plats := []string{"linux/amd64", "linux/amd64/v2"}
	s := uniqueSpec(t, env, "platform: [linux/amd64, linux/amd64/v2]\ncommands: [\"uname -m > /arch.txt\"]\n")
	res := buildInProc(t, s)
	r, err := name.ParseReference(res.Ref+"@"+res.Digest, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(r)
	if err != nil {
		t.Fatalf("%s is not an index: %v", res.Ref, err)
	}
	if err := validate.Index(idx); err != nil {
		t.Fatalf("validate.Index: %v", err)
	}
	checkPlatforms(t, idx, plats)

	out := filepath.Join(t.TempDir(), "multi.oci.tar")
	local := buildInProc(t, "--output", "oci:"+out, s)
	lidx := ociIndex(t, out)
	m, err := lidx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Manifests) != 1 || m.Manifests[0].Digest.String() != local.Digest || local.Digest != res.Digest {
		t.Fatalf("layout index.json %+v; want the pushed index %s (got %s)", m.Manifests, res.Digest, local.Digest)
	}
	inner, err := lidx.ImageIndex(m.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	checkPlatforms(t, inner, plats)
}

// TestBuildUnsupportedPlatform: a platform the workers cannot build is an
// error (exit 3) before any work, naming the platform and what they build.
func TestBuildUnsupportedPlatform(t *testing.T) {
	env := e2e(t)
	s := uniqueSpec(t, env, "platform: [linux/amd64, linux/s390x]\ncommands: [\"touch /never\"]\n")
	tagOut, _, _ := run(t, "tag", s)
	_, errOut, code := run(t, "build", "--progress", "plain", s)
	if code != exitUnavailable {
		t.Errorf("exit %d, want %d", code, exitUnavailable)
	}
	for _, want := range []string{"platform linux/s390x is not supported", "linux/amd64", "QEMU"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr does not say %q:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "touch /never") {
		t.Errorf("a step ran:\n%s", errOut)
	}
	if n := testenv.CountManifestPuts(t, env.RegistryLog, repoOf(strings.TrimSpace(tagOut))); n != 0 {
		t.Errorf("%d manifest pushes, want 0", n)
	}
}

func checkPlatforms(t *testing.T, idx v1.ImageIndex, want []string) {
	t.Helper()
	m, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range m.Manifests {
		if d.Platform == nil {
			t.Errorf("manifest %s has no platform", d.Digest)
			continue
		}
		got = append(got, d.Platform.String())
		im, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := im.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if p := cfg.Platform(); p == nil || p.String() != d.Platform.String() {
			t.Errorf("manifest for %s has config platform %v", d.Platform, p)
		}
		if imageFile(t, im, "arch.txt") != "x86_64\n" {
			t.Errorf("%s: /arch.txt = %q", d.Platform, imageFile(t, im, "arch.txt"))
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("index platforms %q, want %q", got, want)
	}
}

// pushCopy copies an image in the test registry to another reference.
func pushCopy(t *testing.T, from, to string) {
	t.Helper()
	src, err := name.ParseReference(from, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	dst, err := name.ParseReference(to, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	im, err := remote.Image(src)
	if err != nil {
		t.Fatalf("fetching %s: %v", from, err)
	}
	if err := remote.Write(dst, im); err != nil {
		t.Fatalf("pushing %s: %v", to, err)
	}
}

// imageFile returns the content of a file of the image ("" when absent).
func imageFile(t *testing.T, im v1.Image, p string) string {
	t.Helper()
	content, _ := testenv.ImageFile(t, im, p)
	return content
}

package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/ispec-dev/ispec/internal/testenv"
)

// TestPythonDefaultBase: python_version without base_image builds on the
// Python base template's image (--python-base or ISPEC_PYTHON_BASE), the
// template is part of the tag, and the venv is made with that version.
func TestPythonDefaultBase(t *testing.T) {
	env := e2e(t)
	n := time.Now().UnixNano()
	// A stand-in for the official python:3.11-slim-bookworm image: the
	// Debian fixture, which has python3.11, under a new repository.
	standIn := fmt.Sprintf("%s/stand-in-%d/python", env.Registry, n)
	push(t, standIn+":3.11-slim-bookworm", testenv.Pull(t, env.BasePython))
	tmpl := standIn + ":{python_version}-slim-bookworm"

	dir := writeFiles(t, map[string]string{"spec.yaml": fmt.Sprintf(`name: py
registry: %s/python-default-%d
python_version: "3.11"
packages: ["ispec-demo-b==2.0.0"]
pip_index: %s
commands: ["python -c 'import ispec_demo_b'"]
`, env.Registry, n, env.IndexURL)})
	s := filepath.Join(dir, "spec.yaml")

	// The default template is the official image; the template is hashed.
	out, errOut, code := run(t, "explain", s)
	if code != 0 || !strings.Contains(out, `"ref":"docker.io/library/python:3.11-slim-bookworm"`) {
		t.Errorf("explain without a template: exit %d %q %s; want the official python:3.11-slim-bookworm", code, out, errOut)
	}
	defaultTag, _, _ := run(t, "tag", s)
	flagTag, _, _ := run(t, "tag", "--python-base", tmpl, s)
	t.Setenv("ISPEC_PYTHON_BASE", tmpl)
	envTag, _, _ := run(t, "tag", s)
	if defaultTag == flagTag || flagTag != envTag || flagTag == "" {
		t.Errorf("tags: default %q, --python-base %q, ISPEC_PYTHON_BASE %q; want the template in the hash, flag and env alike", defaultTag, flagTag, envTag)
	}

	res := buildJSON(t, s, "--progress", "plain")
	if !res.Built || res.Ref != strings.TrimSpace(envTag) {
		t.Fatalf("build: %+v; want %s built", res, envTag)
	}
	img := testenv.Pull(t, res.Ref+"@"+res.Digest)
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cf.Config.Labels["org.opencontainers.image.base.name"], standIn+":3.11-slim-bookworm"; got != want {
		t.Errorf("base.name label %q, want %q", got, want)
	}
	checkVenv(t, img, "python3.11")
}

// TestPythonVersionOnBase: with a base_image, the venv is made with that
// base's python{version}.
func TestPythonVersionOnBase(t *testing.T) {
	env := e2e(t)
	s := uniquePythonSpec(t, env, env.BasePython, `python_version: "3.11"
packages: ["ispec-demo-b==2.0.0"]
commands: ["python -c 'import ispec_demo_b'"]
`)
	res := buildJSON(t, s, "--progress", "plain")
	if !res.Built {
		t.Fatalf("build: %+v; want built", res)
	}
	checkVenv(t, testenv.Pull(t, res.Ref+"@"+res.Digest), "python3.11")
}

// TestPythonMissingInterpreter: a base image without the interpreter the
// spec asks for fails in the venv step with a message that names it, says
// what the base has and what to change; nothing is pushed.
func TestPythonMissingInterpreter(t *testing.T) {
	env := e2e(t)
	noVenv := fmt.Sprintf("%s/no-venv-%d/python:bookworm", env.Registry, time.Now().UnixNano())
	push(t, noVenv, withoutEnsurepip(t, testenv.Pull(t, env.BasePython)))
	for _, tc := range []struct {
		name, base, body string
		want             []string
	}{
		{
			name: "python_version the base lacks",
			base: env.BasePython,
			body: "python_version: \"3.12\"\npackages: [\"ispec-demo-b==2.0.0\"]\n",
			want: []string{"the base image has no python3.12", "Python on its PATH: python3 python3.11)", "python_version", "base_image"},
		},
		{
			name: "packages on a base without Python",
			base: env.BaseBusybox,
			body: "packages: [\"ispec-demo-b==2.0.0\"]\n",
			want: []string{"the base image has no python3", "Python on its PATH: none)", "apt_packages", "python_version"},
		},
		{
			name: "a Python that cannot make a venv",
			base: noVenv,
			body: "python_version: \"3.11\"\npackages: [\"ispec-demo-b==2.0.0\"]\n",
			want: []string{"python3.11 cannot make virtual environments", "ensurepip", "add python3-venv to apt_packages"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := uniquePythonSpec(t, env, tc.base, tc.body)
			tagOut, _, _ := run(t, "tag", s)
			ref := strings.TrimSpace(tagOut)
			_, errOut, code := runProc(t, "build", "--progress", "quiet", s)
			if code != exitFailed {
				t.Errorf("exit %d, want %d", code, exitFailed)
			}
			for _, w := range append(tc.want, "venv") {
				if !strings.Contains(errOut, w) {
					t.Errorf("the error does not say %q:\n%s", w, errOut)
				}
			}
			assertNothingPushed(t, env, ref)
		})
	}
}

// withoutEnsurepip returns img with Python's ensurepip module removed, as
// Debian's python3 is without python3-venv.
func withoutEnsurepip(t *testing.T, img v1.Image) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "usr/lib/python3.11/.wh.ensurepip", Typeflag: tar.TypeReg, Mode: 0o644}); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	dt := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(dt)), nil })
	if err != nil {
		t.Fatal(err)
	}
	out, err := mutate.AppendLayers(img, l)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// uniquePythonSpec writes a spec on base that pushes to a new repository
// and installs from the test index.
func uniquePythonSpec(t *testing.T, env *testenv.Env, base, body string) string {
	t.Helper()
	dir := writeFiles(t, map[string]string{
		"spec.yaml": fmt.Sprintf("name: py\nregistry: %s/python-%d\nbase_image: %s\npip_index: %s\n%s", env.Registry, time.Now().UnixNano(), base, env.IndexURL, body),
	})
	return filepath.Join(dir, "spec.yaml")
}

// checkVenv wants the image's virtual environment made with python.
func checkVenv(t *testing.T, img v1.Image, python string) {
	t.Helper()
	cfg, ok := testenv.ImageFile(t, img, "opt/venv/pyvenv.cfg")
	if !ok {
		t.Fatal("the image has no /opt/venv/pyvenv.cfg")
	}
	if !strings.Contains(cfg, python+" -m venv /opt/venv") {
		t.Errorf("/opt/venv/pyvenv.cfg does not say it was made by %s:\n%s", python, cfg)
	}
	if _, ok := testenv.ImageFile(t, img, "opt/venv/bin/"+python); !ok {
		t.Errorf("the venv has no bin/%s", python)
	}
}

package main

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ispec-dev/ispec/internal/testenv"
)

// TestSecretInsideSourceRoot: a pip.conf inside source_root, used as a
// pip_secret_mounts source, points pip at the (credential-free) index; the
// build installs from it, says once on stderr that the file was left out,
// and the file's bytes are in no layer, not in the config and not in the
// build log.
func TestSecretInsideSourceRoot(t *testing.T) {
	env := e2e(t)
	marker := fmt.Sprintf("ispec-secret-marker-%d", time.Now().UnixNano())
	dir := writeFiles(t, map[string]string{
		"spec.yaml": fmt.Sprintf(`name: secret-in-source
registry: %s/secret-in-source-%d
base_image: %s
packages: ["ispec-demo-b==2.0.0"]
source_root: src
pip_secret_mounts: [[src/conf/pip.conf, /etc/pip.conf]]
commands: ["test ! -e /etc/pip.conf"]
`, env.Registry, time.Now().UnixNano(), env.BasePython),
		"src/app.py":        "print('app')\n",
		"src/conf/pip.conf": "[global]\nindex-url = " + env.IndexURL + "\n# " + marker + "\n",
	})
	s := filepath.Join(dir, "spec.yaml")

	_, vErr, code := runProc(t, "validate", s)
	if code != 0 || strings.Count(vErr, "src/conf/pip.conf (in source_root)") != 1 || !strings.Contains(vErr, "ispec: warning:") {
		t.Errorf("validate: exit %d, stderr %q; want 0 and one warning naming src/conf/pip.conf", code, vErr)
	}
	explain, _, _ := runProc(t, "explain", "--files", s)
	if strings.Contains(explain, "conf/pip.conf") || strings.Contains(explain, marker) {
		t.Errorf("explain --files lists the secret:\n%s", explain)
	}

	res, errOut := buildJSONErr(t, s, "--progress", "plain")
	if !res.Built {
		t.Fatalf("build: %+v; want built", res)
	}
	if n := strings.Count(errOut, "left out of the image and its tag: src/conf/pip.conf (in source_root)"); n != 1 {
		t.Errorf("the warning appears %d times on stderr, want once:\n%s", n, tail(errOut, 40))
	}
	if strings.Contains(errOut, marker) {
		t.Error("the secret's bytes are in the build log")
	}
	img := testenv.Pull(t, res.Ref+"@"+res.Digest)
	raw, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(marker)) {
		t.Error("the secret's bytes are in the image config")
	}
	files := searchLayers(t, img, []byte(marker))
	if _, ok := files["root/app.py"]; !ok {
		t.Error("source_root's app.py is not in the image")
	}
	for p := range files {
		if strings.HasSuffix(p, "pip.conf") {
			t.Errorf("%s is in a layer", p)
		}
	}
	if _, ok := testenv.ImageFile(t, img, "opt/venv/lib/python3.11/site-packages/ispec_demo_b-2.0.0.dist-info/METADATA"); !ok {
		t.Error("pip did not install from the index the secret pip.conf names")
	}
}

// searchLayers fails the test when any layer holds needle (in a file's
// name or content, compressed or not) and returns every path of every layer.
func searchLayers(t *testing.T, img v1.Image, needle []byte) map[string]bool {
	t.Helper()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]bool{}
	for i, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		dt, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(dt, needle) {
			t.Errorf("the secret's bytes are in layer %d", i)
		}
		testenv.TarEntries(t, bytes.NewReader(dt), func(name string, _ *tar.Header, _ io.Reader) {
			files[name] = true
		})
	}
	return files
}

// TestRequirementsIncludes: a requirements file that includes another
// (-r) and a constraints file (-c) builds, pip honours the constraint, and
// a change to an included file changes the tag.
func TestRequirementsIncludes(t *testing.T) {
	env := e2e(t)
	dir := writeFiles(t, map[string]string{
		"spec.yaml": fmt.Sprintf(`name: req-includes
registry: %s/req-includes-%d
base_image: %s
pip_index: %s
requirements: reqs/app.txt
`, env.Registry, time.Now().UnixNano(), env.BasePython, env.IndexURL),
		"reqs/app.txt":         "-r base.txt\n--constraint ../pins/constraints.txt\n",
		"reqs/base.txt":        "ispec-demo-a  # the newest is 1.1.0; the constraint says 1.0.0\nispec-demo-b\n",
		"pins/constraints.txt": "ispec-demo-a==1.0.0\n",
	})
	s := filepath.Join(dir, "spec.yaml")
	before, _, _ := runProc(t, "tag", s)

	res := buildJSON(t, s, "--progress", "plain")
	if !res.Built {
		t.Fatalf("build: %+v; want built", res)
	}
	img := testenv.Pull(t, res.Ref+"@"+res.Digest)
	site := "opt/venv/lib/python3.11/site-packages/"
	if _, ok := testenv.ImageFile(t, img, site+"ispec_demo_a-1.0.0.dist-info/METADATA"); !ok {
		t.Error("ispec-demo-a 1.0.0 is not installed: the constraint was not honoured")
	}
	if _, ok := testenv.ImageFile(t, img, site+"ispec_demo_a-1.1.0.dist-info/METADATA"); ok {
		t.Error("ispec-demo-a 1.1.0 is installed despite the constraint")
	}
	if _, ok := testenv.ImageFile(t, img, site+"ispec_demo_b-2.0.0.dist-info/METADATA"); !ok {
		t.Error("ispec-demo-b from the included file is not installed")
	}
	for p := range searchLayers(t, img, []byte("the constraint says")) {
		if strings.HasPrefix(p, "run/ispec") {
			t.Errorf("%s: the requirements mount left files in a layer", p)
		}
	}

	if err := os.WriteFile(filepath.Join(dir, "pins", "constraints.txt"), []byte("ispec-demo-a==1.1.0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	after, _, _ := runProc(t, "tag", s)
	if before == "" || before == after {
		t.Errorf("tag %q before and %q after changing the constraints file; want a change", before, after)
	}
}

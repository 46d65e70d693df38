package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ispec-dev/ispec/internal/testenv"
)

// TestLayersThroughServer: a layered spec whose layers copy files is
// built through ispec serve (its layers' files uploaded), and a local
// lookup of the same spec finds the image under the same tag.
func TestLayersThroughServer(t *testing.T) {
	env := e2e(t)
	srv := startServe(t)
	dir := writeFiles(t, map[string]string{
		"spec.yaml": fmt.Sprintf(`name: e2e-layers-%d
registry: %s/cli
base_image: %s
layers:
  - workdir: /srv
  - copy: [{src: conf, dst: conf}, {src: run.sh, dst: /usr/local/bin/}]
  - commands: ["test -f /srv/conf/a.conf", "test -f /usr/local/bin/run.sh"]
`, time.Now().UnixNano(), env.Registry, env.BaseBusybox),
		"conf/a.conf": "a\n",
		"run.sh":      "#!/bin/sh\n",
	})
	s := filepath.Join(dir, "spec.yaml")
	out, errOut, code := runProc(t, "build", "--server", srv.addr, "--json", s)
	var res buildResult
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || !res.Built {
		t.Fatalf("build through the server: exit %d out %q\n%s", code, out, errOut)
	}
	out, errOut, code = runProc(t, "exists", s)
	if code != 0 || out != res.Ref+"@"+res.Digest+"\n" {
		t.Errorf("local exists: exit %d out %q, want %s@%s\n%s", code, out, res.Ref, res.Digest, errOut)
	}
}

// TestLayerSecretThroughServer: a layer's own pip_secret_mounts travel
// with the upload to ispec serve, as the top-level ones do: the layer's
// pip reads its index from the secret pip.conf (the spec names none), the
// next layer's from a secret given as PIP_INDEX_URL, neither is in a
// layer of the pushed image, and a local lookup of the same spec finds it
// under the same tag.
func TestLayerSecretThroughServer(t *testing.T) {
	env := e2e(t)
	srv := startServe(t)
	marker := fmt.Sprintf("ispec-layer-secret-%d", time.Now().UnixNano())
	dir := writeFiles(t, map[string]string{
		"spec.yaml": fmt.Sprintf(`name: e2e-layer-secret-%d
registry: %s/cli
base_image: %s
layers:
  - packages: ["ispec-demo-b==2.0.0"]
    pip_secret_mounts: [[keys/pip.conf, /etc/pip.conf]]
  - packages: ["ispec-demo-a==1.0.0"]
    pip_secret_mounts: [{source: keys/index-url, env: PIP_INDEX_URL}]
  - commands: ["test ! -e /etc/pip.conf", "python -c 'import ispec_demo_b, ispec_demo_a'"]
`, time.Now().UnixNano(), env.Registry, env.BasePython),
		"keys/pip.conf":  "[global]\nindex-url = " + env.IndexURL + "\n# " + marker + "\n",
		"keys/index-url": strings.Replace(env.IndexURL, "://", "://ispec:"+marker+"@", 1) + "\n",
	})
	s := filepath.Join(dir, "spec.yaml")
	out, errOut, code := runProc(t, "build", "--server", srv.addr, "--json", "--progress", "plain", s)
	var res buildResult
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || !res.Built {
		t.Fatalf("build through the server: exit %d out %q\n%s", code, out, tail(errOut, 40))
	}
	if strings.Contains(errOut, marker) {
		t.Error("the secret's bytes are in the build log")
	}
	img := testenv.Pull(t, res.Ref+"@"+res.Digest)
	if raw, _ := img.RawConfigFile(); strings.Contains(string(raw), marker) || strings.Contains(string(raw), "keys/pip.conf") {
		t.Error("the image config holds the secret or its source")
	}
	// searchLayers fails the test when a layer holds the marker.
	for p := range searchLayers(t, img, []byte(marker)) {
		if strings.HasSuffix(p, "pip.conf") || strings.HasSuffix(p, "index-url") {
			t.Errorf("%s is in a layer", p)
		}
	}
	out, errOut, code = runProc(t, "exists", s)
	if code != 0 || out != res.Ref+"@"+res.Digest+"\n" {
		t.Errorf("local exists: exit %d out %q, want %s@%s\n%s", code, out, res.Ref, res.Digest, errOut)
	}
}

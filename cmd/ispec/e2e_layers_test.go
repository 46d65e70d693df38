package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"
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

package builder

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ispec-dev/ispec/internal/pyindex"
	"github.com/ispec-dev/ispec/internal/testenv"
)

// TestE2ELayersAptCopyWheelsSecret builds a spec whose layers are an apt
// layer, env, workdir, a copy layer, a python_wheels layer and a packages
// layer that reaches a private index through its own pip_secret_mounts,
// then reads back from the pushed image what each layer says: the apt
// package's files, the copied files under the working directory, the
// installed wheels, and the env and working directory of a later layer's
// commands and of the image; the secret is in no layer and no config.
func TestE2ELayersAptCopyWheelsSecret(t *testing.T) {
	env := loadDevEnv(t)
	b := newE2EBuilder(t, env)
	password := fmt.Sprintf("ispec-layer-secret-%d", time.Now().UnixNano())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: pyindex.Handler(env.IndexWheels, pyindex.WithBasicAuth("ispec", password))}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	private := "http://ispec:" + password + "@" + ln.Addr().String() + "/simple"

	repo := fmt.Sprintf("e2e-layers-apt-copy-%d", time.Now().UnixNano())
	dir := t.TempDir()
	if _, err := pyindex.WriteWheel(filepath.Join(dir, "wheels"), "ispec-layers-local", "1.0.0", nil); err != nil {
		t.Fatal(err)
	}
	// No top-level pip_index: the packages layer finds its index only in
	// its secret pip.conf.
	doc := fmt.Sprintf(`name: kinds
registry: %s/%s
base_image: %s
layers:
  - apt_packages: [jq]
  - env: {APP_HOME: /srv/app, PATH: "/srv/app/bin:$PATH"}
  - workdir: /srv/app
  - copy: [{src: bin/tool.sh, dst: bin/}, {src: data, dst: /srv/data}]
  - python_wheels: wheels
    pip_index: %s
  - packages: [ispec-demo-b==2.0.0]
    pip_secret_mounts: [[private/pip.conf, /etc/pip.conf]]
  - commands:
      - jq -nc '[1,2]' > jq.json
      - tool.sh > tool.txt
      - echo "$APP_HOME $(pwd)" > where.txt
      - python -c 'import ispec_demo_b, ispec_layers_local; print(ispec_demo_b.__version__, ispec_layers_local.__version__)' > py.txt
      - test ! -e /etc/pip.conf
`, env.Registry, repo, env.BasePython, env.IndexURL)
	img := loadSpecIn(t, dir, doc, map[string]string{
		"bin/tool.sh":      "#!/bin/sh\necho tool ran\n",
		"data/table.csv":   "a,b\n1,2\n",
		"private/pip.conf": "[global]\nindex-url = " + private + "\n",
	})
	res, events, err := build(t, b, img)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	for _, s := range events {
		for _, l := range s.Logs {
			if strings.Contains(string(l.Data), password) {
				t.Errorf("the layer's secret is in a log line: %q", l.Data)
			}
		}
	}
	im := testenv.Pull(t, res.Ref+"@"+res.Digest)
	for p, want := range map[string]string{
		"srv/app/jq.json":    "[1,2]\n",
		"srv/app/tool.txt":   "tool ran\n",
		"srv/app/where.txt":  "/srv/app /srv/app\n",
		"srv/app/py.txt":     "2.0.0 1.0.0\n",
		"srv/data/table.csv": "a,b\n1,2\n",
	} {
		got, ok := testenv.ImageFile(t, im, p)
		if !ok || got != want {
			t.Errorf("/%s = %q (present %v), want %q", p, got, ok, want)
		}
	}
	files := layerFiles(t, im)
	for _, p := range []string{"usr/bin/jq", "srv/app/bin/tool.sh",
		"opt/venv/lib/python3.11/site-packages/ispec_layers_local/__init__.py",
		"opt/venv/lib/python3.11/site-packages/ispec_demo_b-2.0.0.dist-info/METADATA"} {
		if _, ok := files[p]; !ok {
			t.Errorf("the image lacks /%s", p)
		}
	}
	if f := files["srv/app/bin/tool.sh"]; f.mode&0o111 == 0 {
		t.Errorf("tool.sh lost its mode: %o", f.mode)
	}
	if _, ok := files["etc/pip.conf"]; ok {
		t.Error("the layer's secret mount left /etc/pip.conf in the image")
	}
	cfg, err := im.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.WorkingDir != "/srv/app" {
		t.Errorf("WorkingDir %q, want /srv/app", cfg.Config.WorkingDir)
	}
	vars := map[string]string{}
	for _, e := range cfg.Config.Env {
		k, v, _ := strings.Cut(e, "=")
		vars[k] = v
	}
	if vars["APP_HOME"] != "/srv/app" || !strings.HasPrefix(vars["PATH"], "/opt/venv/bin:/srv/app/bin:") {
		t.Errorf("env APP_HOME=%q PATH=%q", vars["APP_HOME"], vars["PATH"])
	}
	raw, _ := im.RawConfigFile()
	if strings.Contains(string(raw), password) || strings.Contains(string(raw), "private/pip.conf") {
		t.Error("the image config holds the layer's secret or its source")
	}
	layers, err := im.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		dt, _ := io.ReadAll(rc)
		rc.Close()
		if strings.Contains(string(dt), password) {
			t.Errorf("the secret is in layer %d", i)
		}
	}
	// One image layer per item that adds files (env adds none), on the
	// base's, the venv's, in order.
	var history []string
	for _, h := range cfg.History {
		if !h.EmptyLayer {
			history = append(history, h.CreatedBy)
		}
	}
	want := []string{"[ispec] layers[0] apt_packages jq", "[ispec] layers[2] workdir /srv/app", "[ispec] layers[3] copy", "[ispec] python3 -m venv", "[ispec] layers[4] python_wheels", "[ispec] layers[5] packages ispec-demo-b==2.0.0", "[ispec] layers[6] commands"}
	if len(history) < len(want) || len(history) != len(layers) {
		t.Fatalf("history %q for %d layers", history, len(layers))
	}
	for i, w := range want {
		if got := history[len(history)-len(want)+i]; !strings.HasPrefix(got, w) {
			t.Errorf("layer %d made by %q, want %q...", len(history)-len(want)+i, got, w)
		}
	}
}

// TestE2ELayersUVProjectNeedsUV: a uv_project layer on an image without
// uv fails, naming the layer and what to do, after the layers before it
// were built. (uv itself is not installed by this environment's index, so
// a uv sync that succeeds is not built here.)
func TestE2ELayersUVProjectNeedsUV(t *testing.T) {
	env := loadDevEnv(t)
	b := newE2EBuilder(t, env)
	doc := fmt.Sprintf(`name: uv
registry: %s/e2e-layers-uv-%d
base_image: %s
pip_index: %s
layers:
  - packages: [ispec-demo-a==1.0.0]
  - uv_project: {pyproject: proj/pyproject.toml, uvlock: proj/uv.lock}
`, env.Registry, time.Now().UnixNano(), env.BasePython, env.IndexURL)
	img := loadSpecIn(t, t.TempDir(), doc, map[string]string{
		"proj/pyproject.toml": "[project]\nname = \"app\"\nversion = \"0.1.0\"\ndependencies = []\n",
		"proj/uv.lock":        "version = 1\nrequires-python = \">=3.11\"\n",
	})
	_, events, err := build(t, b, img)
	if err == nil {
		t.Fatal("a uv_project layer built on an image without uv")
	}
	if want := "layers[1] needs uv in the image"; !strings.Contains(err.Error(), want) {
		t.Errorf("error %q\nwant it to say %q", err, want)
	}
	// The layer before it completed (stepCached fails the test when it
	// is not among the completed steps).
	stepCached(t, stepsCached(events), "[ispec] layers[0] packages ispec-demo-a==1.0.0")
}

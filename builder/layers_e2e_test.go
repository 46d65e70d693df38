package builder

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ispec-dev/ispec/internal/pyindex"
	"github.com/ispec-dev/ispec/internal/testenv"
)

// bigWheelSize is the size of the heavy layer's payload: tens of MB that
// do not compress, so that reinstalling it would show.
const bigWheelSize = 32 << 20

// publishBigWheel writes the heavy wheel to the local index once; its
// bytes are the same on every run.
func publishBigWheel(t *testing.T, env *testenv.Env) {
	t.Helper()
	const name, version = "ispec-layers-big", "1.0.0"
	if _, err := os.Stat(filepath.Join(env.IndexWheels, pyindex.FileName(name, version))); err == nil {
		return
	}
	if _, err := pyindex.WriteWheel(env.IndexWheels, name, version, map[string]string{
		"ispec_layers_big/__init__.py": "__version__ = \"1.0.0\"\n",
		"ispec_layers_big/blob.bin":    pyindex.Payload(bigWheelSize, "ispec"),
	}); err != nil {
		t.Fatal(err)
	}
}

// TestE2ELayersLightChangeKeepsHeavyLayer: a spec whose first pip layer
// installs a big wheel and whose second a small one; after the small
// one's version changes, only its layer runs (the big one is CACHED), and
// the pushed image shares every earlier layer's digest with the first.
func TestE2ELayersLightChangeKeepsHeavyLayer(t *testing.T) {
	env := loadDevEnv(t)
	b := newE2EBuilder(t, env)
	publishBigWheel(t, env)
	// Small versions of this run only, so that no earlier run's cache
	// answers for the changed layer.
	run := time.Now().UnixNano()
	v1, v2 := fmt.Sprintf("1.0.%d", run), fmt.Sprintf("2.0.%d", run)
	for _, v := range []string{v1, v2} {
		if _, err := pyindex.WriteWheel(env.IndexWheels, "ispec-layers-small", v, nil); err != nil {
			t.Fatal(err)
		}
	}
	repo := fmt.Sprintf("e2e-layers-%d", run)
	doc := func(small string) string {
		return fmt.Sprintf(`name: layered
registry: %s/%s
base_image: %s
pip_index: %s
layers:
  - packages: [ispec-layers-big==1.0.0]
  - packages: [ispec-layers-small==%s]
  - commands: ["python -c 'import ispec_layers_big, ispec_layers_small'"]
`, env.Registry, repo, env.BasePython, env.IndexURL, small)
	}
	dir := t.TempDir()
	start := time.Now()
	res1, _, err := build(t, b, loadSpecIn(t, dir, doc(v1), nil))
	if err != nil {
		t.Fatalf("first build: %v", err)
	}
	first := time.Since(start)
	start = time.Now()
	res2, events, err := build(t, b, loadSpecIn(t, dir, doc(v2), nil))
	if err != nil {
		t.Fatalf("second build: %v", err)
	}
	t.Logf("first build %v, after the light change %v (the heavy layer may be cached from an earlier run)", first.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	steps := stepsCached(events)
	if !stepCached(t, steps, "[ispec] layers[0] packages ispec-layers-big") {
		t.Errorf("the heavy layer ran again: %v", steps)
	}
	if stepCached(t, steps, "[ispec] layers[1] packages ispec-layers-small") {
		t.Errorf("the changed layer was not built: %v", steps)
	}
	if stepCached(t, steps, "[ispec] layers[2] commands") {
		t.Errorf("the layer after the changed one was not built: %v", steps)
	}
	l1, err := testenv.Pull(t, res1.Ref).Layers()
	if err != nil {
		t.Fatal(err)
	}
	l2, err := testenv.Pull(t, res2.Ref).Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(l1) != len(l2) || len(l1) < 3 {
		t.Fatalf("layers: %d vs %d", len(l1), len(l2))
	}
	for i := range l1 {
		d1, _ := l1[i].Digest()
		d2, _ := l2[i].Digest()
		// The last two are the small package's layer and the command's
		// (which runs again, but may write the same bytes).
		switch {
		case i < len(l1)-2 && d1 != d2:
			t.Errorf("layer %d of %d, before the changed one, differs: %s vs %s", i, len(l1), d1, d2)
		case i == len(l1)-2 && d1 == d2:
			t.Errorf("the changed layer (%d of %d) kept its digest %s", i, len(l1), d1)
		}
	}
	big, _ := l1[len(l1)-3].Size()
	if big < bigWheelSize {
		t.Errorf("the layer before the small one is %d bytes, not the heavy layer", big)
	}
}

// TestE2ELayersChangeOfEarlierPackageFails: a later pip layer that
// changes the version an earlier layer installed fails and says which
// layer changed what; with allow_changes it builds.
func TestE2ELayersChangeOfEarlierPackageFails(t *testing.T) {
	env := loadDevEnv(t)
	b := newE2EBuilder(t, env)
	run := time.Now().UnixNano()
	v1, v2 := fmt.Sprintf("1.0.%d", run), fmt.Sprintf("2.0.%d", run)
	for _, v := range []string{v1, v2} {
		if _, err := pyindex.WriteWheel(env.IndexWheels, "ispec-layers-small", v, nil); err != nil {
			t.Fatal(err)
		}
	}
	doc := func(allow string) string {
		return fmt.Sprintf(`name: conflict
registry: %s/e2e-layers-conflict
base_image: %s
pip_index: %s
layers:
  - packages: [ispec-layers-small==%s]
  - packages: [ispec-layers-small==%s]
%s`, env.Registry, env.BasePython, env.IndexURL, v1, v2, allow)
	}
	dir := t.TempDir()
	_, _, err := build(t, b, loadSpecIn(t, dir, doc(""), nil))
	if err == nil {
		t.Fatal("a later layer changed an earlier layer's package and the build passed")
	}
	want := fmt.Sprintf("layers[1] changes ispec-layers-small %s, installed by an earlier layer, to %s", v1, v2)
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q\nwant it to say %q", err, want)
	}
	if _, _, err := build(t, b, loadSpecIn(t, dir, doc("    allow_changes: true\n"), nil)); err != nil {
		t.Errorf("with allow_changes: %v", err)
	}
}

// TestE2ELayersEveryKind builds a spec with a layer of each kind but apt
// and uv (apt is the flat step's; uv needs uv in the image) and checks
// the image's files, env, working directory and history.
func TestE2ELayersEveryKind(t *testing.T) {
	env := loadDevEnv(t)
	b := newE2EBuilder(t, env)
	repo := fmt.Sprintf("e2e-layers-kinds-%d", time.Now().UnixNano())
	dir := t.TempDir()
	if _, err := pyindex.WriteWheel(filepath.Join(dir, "wheels"), "ispec-layers-local", "1.0.0", nil); err != nil {
		t.Fatal(err)
	}
	doc := fmt.Sprintf(`name: kinds
registry: %s/%s
base_image: %s
pip_index: %s
layers:
  - workdir: /app
  - copy: [{src: bin/run.sh, dst: bin/}, {src: conf, dst: /etc/app}]
  - env: {MODE: "layered", LAYERED_PATH: "/opt/tools:$PATH"}
  - python_wheels: wheels
  - requirements: requirements.txt
  - commands: ["echo \"$MODE\" > mode.txt", "python -c 'import ispec_layers_local, ispec_demo_b'"]
  - workdir: /root
  - commands: ["touch here.txt"]
`, env.Registry, repo, env.BasePython, env.IndexURL)
	img := loadSpecIn(t, dir, doc, map[string]string{
		"bin/run.sh":       "#!/bin/sh\necho run\n",
		"conf/a.conf":      "a\n",
		"requirements.txt": "ispec-demo-b==2.0.0\n",
	})
	res, _, err := build(t, b, img)
	if err != nil {
		t.Fatalf("build: %v", err)
	}
	im := testenv.Pull(t, res.Ref)
	files := layerFiles(t, im)
	for _, p := range []string{"app/bin/run.sh", "etc/app/a.conf", "app/mode.txt", "root/here.txt"} {
		if _, ok := files[p]; !ok {
			t.Errorf("the image lacks /%s", p)
		}
	}
	if f := files["app/bin/run.sh"]; f.mode&0o111 == 0 {
		t.Errorf("run.sh lost its mode: %o", f.mode)
	}
	cfg, err := im.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.WorkingDir != "/root" {
		t.Errorf("WorkingDir %q, want the last workdir layer's /root", cfg.Config.WorkingDir)
	}
	var mode, lpath, path string
	for _, e := range cfg.Config.Env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
		if v, ok := strings.CutPrefix(e, "MODE="); ok {
			mode = v
		}
		if v, ok := strings.CutPrefix(e, "LAYERED_PATH="); ok {
			lpath = v
		}
	}
	// The env layer comes before the first Python layer, so before the
	// virtual environment: it expands PATH as it stood then.
	if mode != "layered" || !strings.HasPrefix(lpath, "/opt/tools:/usr/local/") || strings.Contains(lpath, "venv") {
		t.Errorf("env MODE=%q LAYERED_PATH=%q", mode, lpath)
	}
	if !strings.HasPrefix(path, "/opt/venv/bin:") {
		t.Errorf("PATH %q does not start with the virtual environment's bin", path)
	}
	layers, _ := im.Layers()
	nonEmpty := 0
	for _, h := range cfg.History {
		if !h.EmptyLayer {
			nonEmpty++
		}
	}
	if nonEmpty != len(layers) {
		t.Errorf("%d layers but %d non-empty history entries", len(layers), nonEmpty)
	}
}

package builder

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ispec-dev/ispec/internal/testenv"
)

// TestE2EEnvExpansion: on a real base, the env values are expanded against
// the base's env (after the virtual environment's), and the commands run
// with exactly the env the image's config records.
func TestE2EEnvExpansion(t *testing.T) {
	env := loadDevEnv(t)
	b := newE2EBuilder(t, env)
	doc := fmt.Sprintf(`name: env
registry: %s/e2e-builder-env-%d
base_image: %s
python_exec: python3
workdir: /app
env:
  PATH: "/opt/tool/bin:$PATH"
  TOOL_HOME: "${HOME:-/nohome}/tool"
  UNSET_DEFAULT: "${ISPEC_NOT_SET:-fallback}"
  LITERAL: '\$PATH and "quoted words"'
commands: ["env > /env.txt"]
`, env.Registry, time.Now().UnixNano(), env.BasePython)
	img := loadSpec(t, doc, nil)
	res, _, err := build(t, b, img)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	im := testenv.Pull(t, res.Ref)
	cfg, err := im.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	base := testenv.Pull(t, env.BasePython)
	baseCfg, err := base.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	basePath := envValue(baseCfg.Config.Env, "PATH")
	for _, want := range []string{
		"PATH=/opt/tool/bin:/opt/venv/bin:" + basePath + ":/usr/local/nvidia/bin:/usr/local/cuda/bin",
		"SSL_CERT_DIR=/etc/ssl/certs",
		"LD_LIBRARY_PATH=/usr/local/nvidia/lib64",
		"UNSET_DEFAULT=fallback",
		`LITERAL=$PATH and quoted words`,
		"PYTHONPATH=/app",
		"FLYTE_SDK_RICH_TRACEBACKS=0",
		"VIRTUAL_ENV=/opt/venv",
	} {
		if !slices.Contains(cfg.Config.Env, want) {
			t.Errorf("image env %q lacks %s", cfg.Config.Env, want)
		}
	}
	home := envValue(baseCfg.Config.Env, "HOME")
	if home == "" {
		home = "/nohome"
	}
	if !slices.Contains(cfg.Config.Env, "TOOL_HOME="+home+"/tool") {
		t.Errorf("image env %q: TOOL_HOME is not %s/tool", cfg.Config.Env, home)
	}
	seen, ok := testenv.ImageFile(t, im, "env.txt")
	if !ok {
		t.Fatal("the command wrote no /env.txt")
	}
	lines := strings.Split(strings.TrimSpace(seen), "\n")
	for _, e := range cfg.Config.Env {
		if !slices.Contains(lines, e) {
			t.Errorf("the command ran without the image's %s; it saw:\n%s", e, seen)
		}
	}
}

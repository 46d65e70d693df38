package builder

import (
	"encoding/json"
	"slices"
	"testing"

	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ispec-dev/ispec/spec"
)

func baseConfig(t *testing.T, cfg ocispecs.ImageConfig, history ...ocispecs.History) []byte {
	t.Helper()
	dt, err := json.Marshal(ocispecs.Image{Platform: amd64, Config: cfg, History: history})
	if err != nil {
		t.Fatal(err)
	}
	return dt
}

func TestConfigEnv(t *testing.T) {
	img := loadSpec(t, fullSpec, fullFiles)
	img.Spec.Env["LANG"] = "C.UTF-8"
	base := baseConfig(t, ocispecs.ImageConfig{Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C", "BASE=1"}})
	cfg, err := Config(img, Input{Platform: amd64, Base: testBase, Accounts: debianAccounts(), BaseConfig: base}, ConfigInput{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"PATH=/opt/venv/bin:/usr/local/bin:/usr/bin:/bin:/usr/local/nvidia/bin:/usr/local/cuda/bin",
		"LANG=C.UTF-8",
		"BASE=1",
		"VIRTUAL_ENV=/opt/venv",
		"FLYTE_SDK_RICH_TRACEBACKS=0",
		"SSL_CERT_DIR=/etc/ssl/certs",
		"PYTHONPATH=/app",
		"APP_MODE=test",
		"LD_LIBRARY_PATH=/usr/local/nvidia/lib64",
	}
	if !slices.Equal(cfg.Config.Env, want) {
		t.Errorf("env:\ngot  %q\nwant %q", cfg.Config.Env, want)
	}

	// The commands see the image's env.
	ops := graph(t, img, base)
	cmdEnv := ops[5].GetExec().Meta.Env
	for _, e := range want {
		if !slices.Contains(cmdEnv, e) {
			t.Errorf("command env %q lacks %s", cmdEnv, e)
		}
	}
}

func TestConfigEnvWithoutVenv(t *testing.T) {
	img := loadSpec(t, "name: x\nbase_image: "+testBase+"\nenv: {PATH: /mine}\n", nil)
	cfg, err := Config(img, Input{Platform: amd64, Base: testBase, Accounts: debianAccounts(), BaseConfig: baseConfig(t, ocispecs.ImageConfig{Env: []string{"PATH=/bin"}})}, ConfigInput{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"PATH=/mine:/usr/local/nvidia/bin:/usr/local/cuda/bin", "FLYTE_SDK_RICH_TRACEBACKS=0", "SSL_CERT_DIR=/etc/ssl/certs", "PYTHONPATH=/root", "LD_LIBRARY_PATH=/usr/local/nvidia/lib64"}; !slices.Equal(cfg.Config.Env, want) {
		t.Errorf("env = %q, want %q (the spec wins, no venv)", cfg.Config.Env, want)
	}
}

func TestConfigEntrypoint(t *testing.T) {
	base := baseConfig(t, ocispecs.ImageConfig{Entrypoint: []string{"/docker-entrypoint.sh"}, Cmd: []string{"python3"}})
	for _, tc := range []struct {
		name      string
		doc       string
		entry     []string
		cmd       []string
		clearSpec bool
	}{
		{name: "kept", doc: "", entry: []string{"/docker-entrypoint.sh"}, cmd: []string{"python3"}},
		{name: "replaced", doc: "entrypoint: [/app/run, --fast]\n", entry: []string{"/app/run", "--fast"}},
		{name: "cleared", clearSpec: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := loadSpec(t, "name: x\nbase_image: "+testBase+"\n"+tc.doc, nil)
			if tc.clearSpec {
				img.Spec.Entrypoint = []string{}
			}
			cfg, err := Config(img, Input{Platform: amd64, Base: testBase, Accounts: debianAccounts(), BaseConfig: base}, ConfigInput{})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(cfg.Config.Entrypoint, tc.entry) || !slices.Equal(cfg.Config.Cmd, tc.cmd) {
				t.Errorf("entrypoint %q cmd %q, want %q %q", cfg.Config.Entrypoint, cfg.Config.Cmd, tc.entry, tc.cmd)
			}
		})
	}
}

func TestConfigLabelsAndMetadata(t *testing.T) {
	img := loadSpec(t, fullSpec+"labels: {team: ml, dev.ispec.spec-hash: forged}\n", fullFiles)
	base := baseConfig(t, ocispecs.ImageConfig{Labels: map[string]string{"maintainer": "base", "team": "base"}, WorkingDir: "/base"},
		ocispecs.History{CreatedBy: "base layer"})
	cfg, err := Config(img, Input{Platform: amd64, Base: testBase, Accounts: debianAccounts(), BaseConfig: base}, ConfigInput{BaseDigest: "sha256:abc", Version: "v1.2.3"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"maintainer":                           "base",
		"team":                                 "ml",
		"org.opencontainers.image.created":     "1970-01-01T00:00:00Z",
		"org.opencontainers.image.base.name":   testBase,
		"org.opencontainers.image.base.digest": "sha256:abc",
		LabelSpecHash:                          img.Identity.SpecHash,
		LabelSpec:                              string(img.Document),
		LabelVersion:                           "v1.2.3",
		LabelRecipe:                            spec.RecipeVersion,
	}
	for k, v := range want {
		if got := cfg.Config.Labels[k]; got != v {
			t.Errorf("label %s = %q, want %q", k, got, v)
		}
	}
	if len(cfg.Config.Labels) != len(want) {
		t.Errorf("labels = %v", cfg.Config.Labels)
	}
	if cfg.Config.WorkingDir != "/app" {
		t.Errorf("workdir = %q", cfg.Config.WorkingDir)
	}
	if cfg.Created == nil || !cfg.Created.Equal(*epoch()) || cfg.OS != "linux" || cfg.Architecture != "amd64" {
		t.Errorf("created %v, platform %s/%s", cfg.Created, cfg.OS, cfg.Architecture)
	}
	// History: the base's, one layer per step, then the config.
	steps, _ := Steps(img, Input{Platform: amd64})
	if len(cfg.History) != 1+len(steps)+1 || cfg.History[0].CreatedBy != "base layer" {
		t.Fatalf("history = %+v", cfg.History)
	}
	for i, s := range steps {
		h := cfg.History[1+i]
		if h.CreatedBy != s.Name || h.EmptyLayer || h.Created == nil || !h.Created.Equal(*epoch()) {
			t.Errorf("history %d = %+v, want a layer by %q at the epoch", i, h, s.Name)
		}
	}
	if !cfg.History[len(cfg.History)-1].EmptyLayer {
		t.Error("last history entry should be the empty config entry")
	}
}

func TestConfigDefaultWorkdir(t *testing.T) {
	img := loadSpec(t, "name: x\nbase_image: "+testBase+"\n", nil)
	cfg, err := Config(img, Input{Platform: amd64, Base: testBase, Accounts: debianAccounts()}, ConfigInput{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.WorkingDir != spec.DefaultWorkdir {
		t.Errorf("workdir = %q, want %q", cfg.Config.WorkingDir, spec.DefaultWorkdir)
	}
	if _, ok := cfg.Config.Labels[LabelVersion]; ok {
		t.Error("version label set without a version")
	}
}

func TestConfigDeterministic(t *testing.T) {
	img := loadSpec(t, fullSpec, fullFiles)
	in := Input{Platform: amd64, Base: testBase, Accounts: debianAccounts(), BaseConfig: baseConfig(t, ocispecs.ImageConfig{Env: []string{"A=1"}})}
	a, _ := Config(img, in, ConfigInput{Version: "v1"})
	b, _ := Config(img, in, ConfigInput{Version: "v1"})
	da, _ := json.Marshal(a)
	db, _ := json.Marshal(b)
	if string(da) != string(db) {
		t.Errorf("config differs between calls:\n%s\n%s", da, db)
	}
}

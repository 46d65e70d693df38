package builder

import (
	"slices"
	"strings"
	"testing"

	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

// commandEnv returns the env the first command step runs with.
func commandEnv(t *testing.T, ops []op) []string {
	t.Helper()
	for _, o := range ops {
		if strings.HasPrefix(o.name, "[ispec] commands[0]") {
			return o.GetExec().Meta.Env
		}
	}
	t.Fatalf("no command step in %q", names(ops))
	return nil
}

func TestEnvExpansion(t *testing.T) {
	baseEnv := []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/root", "BASE=b", "PYTHONPATH=/base/lib", "EMPTY="}
	for _, tc := range []struct {
		name    string
		doc     string // added to the spec
		baseEnv []string
		want    []string // KEY=VALUE the image and the commands have
	}{
		{name: "PATH prefix on the base's PATH", doc: "env: {PATH: \"/opt/tool/bin:$PATH\"}\n",
			want: []string{"PATH=/opt/tool/bin:/usr/local/bin:/usr/bin:/bin" + ":/usr/local/nvidia/bin:/usr/local/cuda/bin"}},
		{name: "PATH prefix on the venv's PATH", doc: "python_version: \"3.11\"\nenv: {PATH: \"/opt/tool/bin:${PATH}\"}\n",
			want: []string{"PATH=/opt/tool/bin:/opt/venv/bin:/usr/local/bin:/usr/bin:/bin" + ":/usr/local/nvidia/bin:/usr/local/cuda/bin", "VIRTUAL_ENV=/opt/venv"}},
		{name: "PATH suffix, base without PATH", doc: "env: {PATH: \"$PATH:/opt/tool/bin\"}\n", baseEnv: []string{},
			want: []string{"PATH=" + defaultPath + ":/opt/tool/bin" + ":/usr/local/nvidia/bin:/usr/local/cuda/bin"}},
		{name: "braces and defaults", doc: "env: {A: \"${HOME}/x\", B: \"${UNSET:-dflt}\", C: \"${BASE:+alt}\", D: \"${UNSET:+alt}\", E: \"${EMPTY:-e}\", F: \"${EMPTY-e}\"}\n",
			want: []string{"A=/root/x", "B=dflt", "C=alt", "D=", "E=e", "F="}},
		{name: "escapes and quotes", doc: `env: {A: '\$HOME', B: "'$HOME'", C: '"$HOME dir"', D: 'a\\b', E: '100%'}` + "\n",
			want: []string{"A=$HOME", "B=$HOME", "C=/root dir", `D=a\b`, "E=100%"}},
		{name: "unset is empty", doc: "env: {A: \"x${NOPE}y$NOPE\"}\n", want: []string{"A=xy"}},
		{name: "a spec variable sees the base's value, not the spec's", doc: "env: {BASE: new, Z: \"$BASE\", A: \"$Z\"}\n",
			want: []string{"BASE=new", "Z=b", "A="}},
		{name: "PYTHONPATH default on the workdir", doc: "workdir: /app\n",
			want: []string{"PYTHONPATH=/app", "FLYTE_SDK_RICH_TRACEBACKS=0"}},
		{name: "PYTHONPATH of the spec extends the base's", doc: "env: {PYTHONPATH: \"/src:$PYTHONPATH\"}\n",
			want: []string{"PYTHONPATH=/src:/base/lib"}},
		{name: "PYTHONPATH does not see ispec's default", doc: "env: {PYTHONPATH: \"/src:$PYTHONPATH\"}\n", baseEnv: []string{"PATH=/bin"},
			want: []string{"PYTHONPATH=/src:"}},
		{name: "FLYTE_SDK_RICH_TRACEBACKS of the spec wins", doc: "env: {FLYTE_SDK_RICH_TRACEBACKS: \"1\"}\n",
			want: []string{"FLYTE_SDK_RICH_TRACEBACKS=1", "PYTHONPATH=/root"}},
		{name: "NVIDIA's env is visible", doc: "cuda: \"12.4.1\"\nenv: {LD_LIBRARY_PATH: \"/opt/lib:$LD_LIBRARY_PATH\"}\n", baseEnv: []string{"PATH=/bin"},
			want: []string{"LD_LIBRARY_PATH=/opt/lib:/usr/local/nvidia/lib:/usr/local/nvidia/lib64", "CUDA_VERSION=12.4.1"}},
		{name: "flytekit's defaults", doc: "env: {A: x}\n", baseEnv: []string{"PATH=/bin"},
			want: []string{"SSL_CERT_DIR=/etc/ssl/certs", "PATH=/bin" + ":/usr/local/nvidia/bin:/usr/local/cuda/bin", "LD_LIBRARY_PATH=/usr/local/nvidia/lib64"}},
		{name: "the spec's SSL_CERT_DIR wins and NVIDIA's folders go on the spec's paths", doc: "env: {SSL_CERT_DIR: /certs, PATH: /mine, LD_LIBRARY_PATH: /lib}\n",
			want: []string{"SSL_CERT_DIR=/certs", "PATH=/mine" + ":/usr/local/nvidia/bin:/usr/local/cuda/bin", "LD_LIBRARY_PATH=/usr/local/nvidia/lib64:/lib"}},
		{name: "NVIDIA's folders are not added twice", doc: "env: {PATH: \"$PATH:/usr/local/cuda/bin\", LD_LIBRARY_PATH: /usr/local/nvidia/lib64}\n", baseEnv: []string{"PATH=/bin"},
			want: []string{"PATH=/bin:/usr/local/cuda/bin:/usr/local/nvidia/bin", "LD_LIBRARY_PATH=/usr/local/nvidia/lib64"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := loadSpec(t, "name: x\nbase_image: "+testBase+"\ncommands: [\"true\"]\n"+tc.doc, nil)
			be := baseEnv
			if tc.baseEnv != nil {
				be = tc.baseEnv
			}
			base := baseConfig(t, ocispecs.ImageConfig{Env: be})
			cfg, err := Config(img, Input{Platform: amd64, Base: testBase, Accounts: debianAccounts(), BaseConfig: base}, ConfigInput{})
			if err != nil {
				t.Fatal(err)
			}
			cmdEnv := commandEnv(t, graph(t, img, base))
			for _, w := range tc.want {
				if !slices.Contains(cfg.Config.Env, w) {
					t.Errorf("image env %q lacks %s", cfg.Config.Env, w)
				}
				if !slices.Contains(cmdEnv, w) {
					t.Errorf("command env %q lacks %s", cmdEnv, w)
				}
			}
			// The commands see every variable the image has, with the
			// same value.
			for _, e := range cfg.Config.Env {
				if !slices.Contains(cmdEnv, e) {
					t.Errorf("command env %q lacks the image's %s", cmdEnv, e)
				}
			}
		})
	}
}

func TestEnvExpansionErrors(t *testing.T) {
	for _, v := range []string{`"unclosed`, `'unclosed`, `${UNCLOSED`, `${BAD:?is required}`, `${}`} {
		t.Run(v, func(t *testing.T) {
			img := loadSpec(t, "name: x\nbase_image: "+testBase+"\ncommands: [\"true\"]\n", nil)
			img.Spec.Env = map[string]string{"BROKEN": v}
			base := baseConfig(t, ocispecs.ImageConfig{Env: []string{"PATH=/bin"}})
			_, err := Config(img, Input{Platform: amd64, Base: testBase, Accounts: debianAccounts(), BaseConfig: base}, ConfigInput{})
			if err == nil || !strings.Contains(err.Error(), "env.BROKEN") {
				t.Errorf("Config: err = %v, want one naming env.BROKEN", err)
			}
			if _, err := Graph(img, Input{Platform: amd64, Base: testBase, Accounts: debianAccounts(), BaseConfig: base}); err == nil || !strings.Contains(err.Error(), "env.BROKEN") {
				t.Errorf("Graph: err = %v, want one naming env.BROKEN", err)
			}
		})
	}
}

// TestEnvRequiredFromBase: ${VAR:?} holds when the base sets VAR; Steps,
// which also runs before the base is resolved, never refuses it.
func TestEnvRequiredFromBase(t *testing.T) {
	img := loadSpec(t, "name: x\nbase_image: "+testBase+"\ncommands: [\"true\"]\nenv: {HOME_DIR: \"${HOME:?the base must set HOME}\"}\n", nil)
	if _, err := Steps(img, Input{Platform: amd64}); err != nil {
		t.Errorf("Steps without the base's config: %v", err)
	}
	base := baseConfig(t, ocispecs.ImageConfig{Env: []string{"HOME=/home/app"}})
	if cmdEnv := commandEnv(t, graph(t, img, base)); !slices.Contains(cmdEnv, "HOME_DIR=/home/app") {
		t.Errorf("command env %q lacks HOME_DIR=/home/app", cmdEnv)
	}
	_, err := Graph(img, Input{Platform: amd64, Base: testBase, Accounts: debianAccounts(), BaseConfig: baseConfig(t, ocispecs.ImageConfig{Env: []string{"PATH=/bin"}})})
	if err == nil || !strings.Contains(err.Error(), "the base must set HOME") {
		t.Errorf("Graph on a base without HOME: %v, want the spec's message", err)
	}
}

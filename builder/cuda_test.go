package builder

import (
	"slices"
	"strings"
	"testing"

	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
)

const cudaSpec = "name: gpu\nbase_image: " + testBase + "\ncuda: \"12.4.1\"\ncudnn: \"9\"\ncommands: [\"ldconfig -p > /libs.txt\"]\n"

func TestCUDAConfigEnv(t *testing.T) {
	for _, tc := range []struct {
		name    string
		doc     string
		baseEnv []string
		want    []string
	}{
		{
			name:    "plain base",
			baseEnv: []string{"PATH=/usr/bin:/bin"},
			want: []string{
				"PATH=/usr/bin:/bin",
				"NVIDIA_VISIBLE_DEVICES=all",
				"NVIDIA_DRIVER_CAPABILITIES=compute,utility",
				"NVIDIA_REQUIRE_CUDA=cuda>=12.4",
				"CUDA_VERSION=12.4.1",
				"LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64",
			},
		},
		{
			name: "NVIDIA's base keeps its constraints",
			baseEnv: []string{
				"PATH=/usr/bin",
				"NVIDIA_REQUIRE_CUDA=cuda>=12.4 brand=tesla,driver>=470,driver<471",
				"NV_CUDA_LIB_VERSION=12.4.1-1",
				"NVIDIA_DRIVER_CAPABILITIES=compute,utility,video",
				"NVIDIA_VISIBLE_DEVICES=all",
				"CUDA_VERSION=12.4.1",
				"LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64",
			},
			want: []string{
				"PATH=/usr/bin",
				"NVIDIA_REQUIRE_CUDA=cuda>=12.4 brand=tesla,driver>=470,driver<471",
				"NV_CUDA_LIB_VERSION=12.4.1-1",
				"NVIDIA_DRIVER_CAPABILITIES=compute,utility,video",
				"NVIDIA_VISIBLE_DEVICES=all",
				"CUDA_VERSION=12.4.1",
				"LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64",
			},
		},
		{
			name:    "other CUDA in the base, own library path",
			baseEnv: []string{"NVIDIA_REQUIRE_CUDA=cuda>=11.8 brand=tesla", "CUDA_VERSION=11.8.0", "LD_LIBRARY_PATH=/opt/lib:/usr/local/nvidia/lib64"},
			want: []string{
				"NVIDIA_REQUIRE_CUDA=cuda>=12.4",
				"CUDA_VERSION=12.4.1",
				"LD_LIBRARY_PATH=/opt/lib:/usr/local/nvidia/lib64:/usr/local/nvidia/lib",
				"NVIDIA_VISIBLE_DEVICES=all",
				"NVIDIA_DRIVER_CAPABILITIES=compute,utility",
			},
		},
		{
			name: "the spec's env wins",
			doc:  "env: {LD_LIBRARY_PATH: /mine, NVIDIA_VISIBLE_DEVICES: \"0\"}\n",
			want: []string{
				"NVIDIA_VISIBLE_DEVICES=0",
				"NVIDIA_DRIVER_CAPABILITIES=compute,utility",
				"NVIDIA_REQUIRE_CUDA=cuda>=12.4",
				"CUDA_VERSION=12.4.1",
				"LD_LIBRARY_PATH=/mine",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := loadSpec(t, cudaSpec+tc.doc, nil)
			base := baseConfig(t, ocispecs.ImageConfig{Env: tc.baseEnv})
			cfg, err := Config(img, Input{Platform: amd64, Base: testBase, Accounts: debianAccounts(), BaseConfig: base}, ConfigInput{})
			if err != nil {
				t.Fatal(err)
			}
			// ispec's Flyte defaults (specEnv) come last.
			// and flytekit's NVIDIA folders on PATH and LD_LIBRARY_PATH.
			var want []string
			for _, e := range tc.want {
				switch {
				case strings.HasPrefix(e, "PATH="):
					e += ":/usr/local/nvidia/bin:/usr/local/cuda/bin"
				case e == "LD_LIBRARY_PATH=/mine":
					e = "LD_LIBRARY_PATH=/usr/local/nvidia/lib64:/mine"
				}
				want = append(want, e)
			}
			want = append(want, "FLYTE_SDK_RICH_TRACEBACKS=0", "SSL_CERT_DIR=/etc/ssl/certs", "PYTHONPATH=/root")
			// PATH is appended to in place, or set last from the default.
			if got := withoutPath(cfg.Config.Env); !slices.Equal(got, withoutPath(want)) {
				t.Errorf("env:\ngot  %q\nwant %q", got, withoutPath(want))
			}
			if p := envValue(cfg.Config.Env, "PATH"); !strings.HasSuffix(p, ":/usr/local/nvidia/bin:/usr/local/cuda/bin") {
				t.Errorf("PATH = %q, want NVIDIA's folders last", p)
			}
			// Every step runs with the image's env.
			ops := graph(t, img, base)
			for _, o := range ops[1:] {
				if o.GetExec() == nil {
					continue // the user step
				}
				env := o.GetExec().Meta.Env
				for _, e := range want {
					if !slices.Contains(env, e) {
						t.Errorf("step %q env %q lacks %s", o.name, env, e)
					}
				}
			}
		})
	}
}

func TestCUDAEnvWithVenv(t *testing.T) {
	img := loadSpec(t, cudaSpec+"python_version: \"3.11\"\n", nil)
	cfg, err := Config(img, Input{Platform: amd64, Base: testBase, Accounts: debianAccounts(), BaseConfig: baseConfig(t, ocispecs.ImageConfig{Env: []string{"PATH=/usr/bin"}})}, ConfigInput{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"PATH=/opt/venv/bin:/usr/bin:/usr/local/nvidia/bin:/usr/local/cuda/bin",
		"NVIDIA_VISIBLE_DEVICES=all",
		"NVIDIA_DRIVER_CAPABILITIES=compute,utility",
		"NVIDIA_REQUIRE_CUDA=cuda>=12.4",
		"CUDA_VERSION=12.4.1",
		"LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64",
		"VIRTUAL_ENV=/opt/venv",
		"FLYTE_SDK_RICH_TRACEBACKS=0",
		"SSL_CERT_DIR=/etc/ssl/certs",
		"PYTHONPATH=/root",
	}
	if !slices.Equal(cfg.Config.Env, want) {
		t.Errorf("env:\ngot  %q\nwant %q", cfg.Config.Env, want)
	}
}

func TestNoCUDANoNVIDIAEnv(t *testing.T) {
	img := loadSpec(t, "name: cpu\nbase_image: "+testBase+"\ncommands: [\"true\"]\n", nil)
	base := baseConfig(t, ocispecs.ImageConfig{Env: []string{"PATH=/bin"}})
	cfg, err := Config(img, Input{Platform: amd64, Base: testBase, Accounts: debianAccounts(), BaseConfig: base}, ConfigInput{})
	if err != nil {
		t.Fatal(err)
	}
	ops := graph(t, img, base)
	// Only flytekit's LD_LIBRARY_PATH, which every image gets.
	for _, e := range append(cfg.Config.Env, ops[len(ops)-1].GetExec().Meta.Env...) {
		if strings.HasPrefix(e, "NVIDIA_") || strings.HasPrefix(e, "CUDA_VERSION=") || strings.HasPrefix(e, "LD_LIBRARY_PATH=") && e != "LD_LIBRARY_PATH=/usr/local/nvidia/lib64" {
			t.Errorf("a spec without cuda got %s", e)
		}
	}
}

// TestCUDABaseFromTemplate: without base_image, the graph starts from the
// CUDA template's image.
func TestCUDABaseFromTemplate(t *testing.T) {
	img := loadSpec(t, "name: gpu\ncuda: \"11.8.0\"\ncudnn: \"8\"\n", nil)
	want := "docker.io/nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04"
	if img.Base != want {
		t.Fatalf("base = %q, want %q", img.Base, want)
	}
	st, err := Graph(img, Input{Platform: amd64, Base: img.Base, Accounts: debianAccounts()})
	if err != nil {
		t.Fatal(err)
	}
	ops, _ := chain(t, st)
	if id := ops[0].GetSource().Identifier; id != "docker-image://"+want {
		t.Errorf("base identifier = %q", id)
	}
}

// withoutPath is env without PATH.
func withoutPath(env []string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(e string) bool { return strings.HasPrefix(e, "PATH=") })
}

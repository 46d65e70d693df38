package builder

import (
	"archive/tar"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	gateway "github.com/moby/buildkit/frontend/gateway/client"

	"github.com/ispec-dev/ispec/internal/testenv"
)

// runInImage runs script with /bin/sh in the image ref as its config says
// (User, Env, WorkingDir), as a container runtime would, and returns what
// the script wrote to /tmp/out.
func runInImage(t *testing.T, env *testenv.Env, ref, script string) string {
	t.Helper()
	im := testenv.Pull(t, ref)
	cfg, err := im.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf, err := im.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := client.New(ctx, env.BuildkitHost)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out []byte
	_, err = c.Build(ctx, client.SolveOpt{}, "", func(ctx context.Context, gc gateway.Client) (*gateway.Result, error) {
		st, err := llb.Image(ref).WithImageConfig(cfg)
		if err != nil {
			return nil, err
		}
		if cf.Config.User != "" {
			st = st.User(cf.Config.User)
		}
		run := st.Run(llb.Args([]string{"/bin/sh", "-c", "{ " + script + "; } > /tmp/out 2>&1 || { cat /tmp/out; exit 1; }"}), llb.IgnoreCache).Root()
		def, err := run.Marshal(ctx)
		if err != nil {
			return nil, err
		}
		res, err := gc.Solve(ctx, gateway.SolveRequest{Definition: def.ToPB()})
		if err != nil {
			return nil, err
		}
		r, err := res.SingleRef()
		if err != nil {
			return nil, err
		}
		out, err = r.ReadFile(ctx, gateway.ReadRequest{Filename: "/tmp/out"})
		return gateway.NewResult(), err
	}, nil)
	if err != nil {
		t.Fatalf("running %q in %s: %v", script, ref, err)
	}
	return string(out)
}

// owners returns the uid and gid of every path of the image's own layers
// (those after the base's n layers), the last layer's entry winning.
func owners(t *testing.T, ref string, n int) map[string][2]int {
	t.Helper()
	layers, err := testenv.Pull(t, ref).Layers()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][2]int{}
	for _, l := range layers[n:] {
		testenv.LayerEntries(t, l, func(name string, h *tar.Header, _ io.Reader) {
			out[strings.TrimSuffix(name, "/")] = [2]int{h.Uid, h.Gid}
		})
	}
	return out
}

// TestE2EUser: by default the image runs as flytekit's user, by number;
// it owns /root, its home and the copied files, and a command run as it
// writes to $HOME, reads a copied file and imports a pip-installed package.
func TestE2EUser(t *testing.T) {
	env := loadDevEnv(t)
	b := newE2EBuilder(t, env)
	doc := fmt.Sprintf(`name: user
registry: %s/e2e-builder-user-%d
base_image: %s
packages: ["ispec-demo-a==1.0.0"]
pip_index: %s
copy: [conf.txt, data]
source_root: src
`, env.Registry, time.Now().UnixNano(), env.BasePython, env.IndexURL)
	img := loadSpec(t, doc, map[string]string{"conf.txt": "setting=1\n", "data/a.txt": "a\n", "src/main.py": "print('hi')\n"})
	res, _, err := build(t, b, img)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	cfg, err := testenv.Pull(t, res.Ref).ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.User != "1000:1000" || cfg.Config.WorkingDir != "/root" {
		t.Errorf("config User %q WorkingDir %q, want 1000:1000 and /root", cfg.Config.User, cfg.Config.WorkingDir)
	}
	baseLayers, err := testenv.Pull(t, env.BasePython).Layers()
	if err != nil {
		t.Fatal(err)
	}
	own := owners(t, res.Ref, len(baseLayers))
	for _, p := range []string{"root", "home", "home/flytekit", "root/conf.txt", "root/data", "root/data/a.txt", "root/main.py"} {
		if o, ok := own[p]; !ok || o != [2]int{1000, 1000} {
			t.Errorf("%s: owner %v (in a layer: %v), want 1000:1000", p, o, ok)
		}
	}
	out := runInImage(t, env, res.Ref, `id -u; id -g; echo "$HOME"; echo hi > "$HOME/x" && cat "$HOME/x"; cat conf.txt; touch /root/new; python -c 'import ispec_demo_a; print("imported")'`)
	want := "1000\n1000\n/home/flytekit\nhi\nsetting=1\nimported\n"
	if out != want {
		t.Errorf("in the image as its user:\n%s\nwant:\n%s", out, want)
	}

	t.Run("user root keeps today's image", func(t *testing.T) {
		img := loadSpec(t, doc+"user: root\n", map[string]string{"conf.txt": "setting=1\n", "data/a.txt": "a\n", "src/main.py": "print('hi')\n"})
		res, _, err := build(t, b, img)
		if err != nil {
			t.Fatalf("Build: %v", err)
		}
		cfg, err := testenv.Pull(t, res.Ref).ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Config.User != "" {
			t.Errorf("config User %q, want the base's (root)", cfg.Config.User)
		}
		own := owners(t, res.Ref, len(baseLayers))
		if o := own["root/conf.txt"]; o != [2]int{0, 0} {
			t.Errorf("root/conf.txt owner %v, want 0:0", o)
		}
		if _, ok := own["home/flytekit"]; ok {
			t.Error("user: root made a flytekit home")
		}
	})
}

// TestE2EUserMinimalBase: on busybox (no useradd, no /etc/group) the user
// is created with file operations, with /bin/sh as its shell.
func TestE2EUserMinimalBase(t *testing.T) {
	env := loadDevEnv(t)
	b := newE2EBuilder(t, env)
	doc := fmt.Sprintf("name: user-busybox\nregistry: %s/e2e-builder-user-busybox-%d\nbase_image: %s\ncopy: [conf.txt]\n",
		env.Registry, time.Now().UnixNano(), env.BaseBusybox)
	img := loadSpec(t, doc, map[string]string{"conf.txt": "setting=1\n"})
	res, _, err := build(t, b, img)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	out := runInImage(t, env, res.Ref, `id -u; echo "$HOME"; echo hi > "$HOME/x" && cat "$HOME/x"; cat conf.txt; grep '^flytekit:' /etc/passwd`)
	want := "1000\n/home/flytekit\nhi\nsetting=1\nflytekit:x:1000:1000::/home/flytekit:/bin/sh\n"
	if out != want {
		t.Errorf("in the image as its user:\n%s\nwant:\n%s", out, want)
	}
}

// TestE2EBaseUserKept: a base that runs as its own non-root user keeps it,
// and the copied files are that user's.
func TestE2EBaseUserKept(t *testing.T) {
	env := loadDevEnv(t)
	b := newE2EBuilder(t, env)
	// The busybox fixture, running as nobody (65534).
	base := testenv.Pull(t, env.BaseBusybox)
	cf, err := base.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cfg := cf.Config
	cfg.User = "nobody"
	nonRoot, err := mutate.Config(base, cfg)
	if err != nil {
		t.Fatal(err)
	}
	baseRef := fmt.Sprintf("%s/e2e-builder-nonroot-base:%d", env.Registry, time.Now().UnixNano())
	r, err := name.ParseReference(baseRef, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, nonRoot); err != nil {
		t.Fatalf("pushing the base: %v", err)
	}
	doc := fmt.Sprintf("name: kept\nregistry: %s/e2e-builder-user-kept-%d\nbase_image: %s\ncopy: [conf.txt]\n",
		env.Registry, time.Now().UnixNano(), baseRef)
	img := loadSpec(t, doc, map[string]string{"conf.txt": "setting=1\n"})
	res, _, err := build(t, b, img)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	got, err := testenv.Pull(t, res.Ref).ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if got.Config.User != "nobody" {
		t.Errorf("config User %q, want the base's nobody", got.Config.User)
	}
	baseLayers, err := base.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if o := owners(t, res.Ref, len(baseLayers))["root/conf.txt"]; o[0] != 65534 {
		t.Errorf("root/conf.txt owner %v, want nobody's 65534", o)
	}
	if _, err := json.Marshal(got); err != nil {
		t.Fatal(err)
	}
}

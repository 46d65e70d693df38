package builder

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"

	"github.com/ispec-dev/ispec/spec"
)

const layeredSpec = `
name: layered
base_image: ` + testBase + `
user: root
apt_packages: [jq]
copy: [conf]
layers:
  - packages: [ispec-big==1.0.0]
    pip_index: http://127.0.0.1:8080/simple
  - packages: [ispec-small==1.0.0]
    allow_changes: true
  - apt_packages: [curl]
  - env: {MODE: "prod-$VIRTUAL_ENV"}
  - workdir: /app
  - commands: ["echo one > one", "echo two > two"]
  - copy: [{src: bin/run.sh, dst: bin/}, {src: conf, dst: /etc/app}]
  - requirements: requirements.txt
  - python_wheels: wheels
`

var layeredFiles = map[string]string{
	"conf/a.conf":                         "a\n",
	"bin/run.sh":                          "#!/bin/sh\n",
	"requirements.txt":                    "ispec-demo-a==1.0.0\n",
	"wheels/ispec_w-1.0-py3-none-any.whl": "zip\n",
}

var layeredNames = []string{
	"[ispec] base " + testBase,
	"[ispec] apt-get install jq",
	"[ispec] copy conf",
	"[ispec] python3 -m venv /opt/venv",
	"[ispec] layers[0] packages ispec-big==1.0.0",
	"[ispec] layers[1] packages ispec-small==1.0.0",
	"[ispec] layers[2] apt_packages curl",
	"[ispec] layers[4] workdir /app",
	"[ispec] layers[5] commands echo one > one; echo two > two",
	"[ispec] layers[6] copy bin/run.sh:bin/ conf:/etc/app",
	"[ispec] layers[7] requirements -r /run/ispec/requirements/requirements.txt",
	"[ispec] layers[8] python_wheels /run/ispec/wheels/ispec_w-1.0-py3-none-any.whl",
}

// TestLayersGraphChain checks that a layered spec's items are one strict
// chain after the flat fields' steps, in order, one op (one layer) each,
// in the merged graph as in the linear one; env adds no op.
func TestLayersGraphChain(t *testing.T) {
	img := loadSpec(t, layeredSpec, layeredFiles)
	for _, linear := range []bool{false, true} {
		st, err := Graph(img, Input{Platform: amd64, Base: testBase, Accounts: debianAccounts(), Linear: linear})
		if err != nil {
			t.Fatalf("Graph: %v", err)
		}
		ops, _ := chain(t, st)
		got := names(ops)
		if linear {
			if !slices.Equal(got, layeredNames) {
				t.Fatalf("linear chain:\ngot  %q\nwant %q", got, layeredNames)
			}
			continue
		}
		// The merged graph joins the flat apt and copy layers; from the
		// venv on it is the same chain, each op on the one before.
		i := slices.Index(got, "[ispec] python3 -m venv /opt/venv")
		if i < 0 || !slices.Equal(got[i:], layeredNames[3:]) {
			t.Fatalf("merged graph chain:\ngot  %q\nwant ... %q", got, layeredNames[3:])
		}
	}
}

func TestLayersPipStep(t *testing.T) {
	img := loadSpec(t, layeredSpec, layeredFiles)
	ops := graph(t, img, nil)
	find := func(prefix string) op {
		for _, o := range ops {
			if strings.HasPrefix(o.name, prefix) {
				return o
			}
		}
		t.Fatalf("no op %q", prefix)
		return op{}
	}
	big := find("[ispec] layers[0]").GetExec().Meta
	want := []string{VenvDir + "/bin/python", "-c", pipLayerScript, "0", "layers[0]", VenvDir + "/bin/python", "-m", "pip", "install", "--no-compile", "--index-url", "http://127.0.0.1:8080/simple", "ispec-big==1.0.0"}
	if !slices.Equal(big.Args, want) {
		t.Errorf("layers[0] args:\ngot  %q\nwant %q", big.Args, want)
	}
	small := find("[ispec] layers[1]").GetExec().Meta.Args
	if small[3] != "1" {
		t.Errorf("allow_changes did not reach the check: %q", small[:5])
	}
	cmds := find("[ispec] layers[5]").GetExec().Meta
	if cmds.Cwd != "/app" || !slices.Contains(cmds.Env, "MODE=prod-/opt/venv") {
		t.Errorf("commands after workdir and env: cwd %q env %q", cmds.Cwd, cmds.Env)
	}
	var mounts []string
	for _, m := range find("[ispec] layers[8]").GetExec().Mounts {
		mounts = append(mounts, m.Dest)
	}
	if !slices.Contains(mounts, layerWheelsDir) {
		t.Errorf("wheels layer mounts %q, want %s", mounts, layerWheelsDir)
	}
	for _, name := range []string{"layer-7-requirements", "layer-8-wheels", "layer-6-copy-0", "layer-6-copy-1"} {
		if _, ok := LocalMounts(img)[name]; !ok {
			t.Errorf("LocalMounts lacks %s", name)
		}
	}
}

// TestLayersLaterChangeKeepsEarlierOps checks what makes BuildKit's cache
// reuse earlier layers: changing the second pip layer leaves every op
// before it the same, and changes it and every op after it.
func TestLayersLaterChangeKeepsEarlierOps(t *testing.T) {
	dir := t.TempDir() // local sources are keyed by their folder, as buildx keys a context
	a := graph(t, loadSpecIn(t, dir, layeredSpec, layeredFiles), nil)
	b := graph(t, loadSpecIn(t, dir, strings.Replace(layeredSpec, "ispec-small==1.0.0", "ispec-small==2.0.0", 1), layeredFiles), nil)
	if len(a) != len(b) {
		t.Fatalf("%d ops vs %d", len(a), len(b))
	}
	changed := slices.IndexFunc(a, func(o op) bool { return strings.HasPrefix(o.name, "[ispec] layers[1]") })
	for i := range a {
		same := a[i].digest == b[i].digest
		if i < changed && !same {
			t.Errorf("op %q before the changed layer changed", a[i].name)
		}
		if i >= changed && same {
			t.Errorf("op %q at or after the changed layer kept its digest", a[i].name)
		}
	}
}

func TestLayersConfig(t *testing.T) {
	img := loadSpec(t, layeredSpec, layeredFiles)
	cfg, err := Config(img, Input{Platform: amd64, Base: testBase, Accounts: debianAccounts()}, ConfigInput{})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.WorkingDir != "/app" {
		t.Errorf("WorkingDir = %q, want the last workdir layer's /app", cfg.Config.WorkingDir)
	}
	if !slices.Contains(cfg.Config.Env, "MODE=prod-/opt/venv") {
		t.Errorf("env %q lacks the env layer's MODE", cfg.Config.Env)
	}
	var empty []string
	for _, h := range cfg.History {
		if h.EmptyLayer {
			empty = append(empty, h.CreatedBy)
		}
	}
	if !slices.Equal(empty, []string{"[ispec] layers[3] env MODE", "[ispec] image config"}) {
		t.Errorf("empty history entries %q", empty)
	}
}

// TestLayersVenvBeforeFirstPythonLayer: without flat Python fields, the
// virtual environment is made right before the first Python layer, after
// an apt layer that may install the interpreter.
func TestLayersVenvBeforeFirstPythonLayer(t *testing.T) {
	img := loadSpec(t, "name: v\nbase_image: "+testBase+"\nuser: root\nlayers:\n  - apt_packages: [python3-venv]\n  - packages: [x]\n", nil)
	got := names(graph(t, img, nil))
	want := []string{"[ispec] base " + testBase, "[ispec] layers[0] apt_packages python3-venv", "[ispec] python3 -m venv /opt/venv", "[ispec] layers[1] packages x"}
	if !slices.Equal(got, want) {
		t.Errorf("chain:\ngot  %q\nwant %q", got, want)
	}
}

// TestLayersPipSecretMounts: a layer's pip_secret_mounts are mounted, as
// secrets readable by root only, in that layer's pip step and in no other
// op; the spec's top-level ones in every pip step; a mount with an env is
// given as that env variable of the step's process, not as a file; and
// the secrets' sources and contents reach no op of the graph.
func TestLayersPipSecretMounts(t *testing.T) {
	const secret = "layer-s3cr3t"
	doc := "name: s\nbase_image: " + testBase + "\nuser: root\npackages: [flat==1]\npip_secret_mounts: [[top.conf, /etc/pip.conf]]\nlayers:\n" +
		"  - packages: [big==1]\n" +
		"  - packages: [private==1]\n    pip_secret_mounts: [[keys/netrc, /root/.netrc], {source: keys/token, target: /run/token}, {source: keys/url, env: PIP_INDEX_URL}]\n" +
		"  - requirements: requirements.txt\n    pip_secret_mounts: [[keys/token, /run/token]]\n" +
		"  - commands: [\"true\"]\n"
	files := map[string]string{"top.conf": secret, "keys/netrc": secret, "keys/token": secret, "keys/url": secret, "requirements.txt": "r==1\n"}
	img := loadSpec(t, doc, files)
	st, err := Graph(img, Input{Platform: amd64, Base: testBase, Accounts: debianAccounts()})
	if err != nil {
		t.Fatal(err)
	}
	def, err := st.Marshal(context.Background(), llb.LinuxAmd64)
	if err != nil {
		t.Fatal(err)
	}
	for _, dt := range def.Def {
		for _, f := range []string{secret, "keys/netrc", "keys/url", "top.conf", img.Dir} {
			if strings.Contains(string(dt), f) {
				t.Errorf("an op of the marshalled graph holds %q", f)
			}
		}
	}
	want := map[string][]string{
		"[ispec] pip install":            {"/etc/pip.conf=ispec-pip-secret-0"},
		"[ispec] layers[0] packages":     {"/etc/pip.conf=ispec-pip-secret-0"},
		"[ispec] layers[1] packages":     {"$PIP_INDEX_URL=ispec-layer-1-pip-secret-2", "/etc/pip.conf=ispec-pip-secret-0", "/root/.netrc=ispec-layer-1-pip-secret-0", "/run/token=ispec-layer-1-pip-secret-1"},
		"[ispec] layers[2] requirements": {"/etc/pip.conf=ispec-pip-secret-0", "/run/token=ispec-layer-2-pip-secret-0"},
	}
	seen := map[string]bool{}
	for _, o := range graph(t, img, nil) {
		ex := o.GetExec()
		if ex == nil {
			continue
		}
		var got []string
		for _, m := range ex.Mounts {
			if m.MountType == pb.MountType_SECRET {
				if m.SecretOpt.Mode != 0o400 || m.SecretOpt.Uid != 0 || m.SecretOpt.Gid != 0 || m.SecretOpt.Optional {
					t.Errorf("%s: secret %s mounted with %+v, want required, root's, 0400", o.name, m.Dest, m.SecretOpt)
				}
				got = append(got, m.Dest+"="+m.SecretOpt.ID)
			}
		}
		for _, e := range ex.Secretenv {
			if e.Optional {
				t.Errorf("%s: env secret %s is optional, want required", o.name, e.Name)
			}
			got = append(got, "$"+e.Name+"="+e.ID)
		}
		if slices.ContainsFunc(ex.Meta.Env, func(e string) bool { return strings.HasPrefix(e, "PIP_INDEX_URL=") }) {
			t.Errorf("%s: the secret's env variable is in the step's plain env", o.name)
		}
		slices.Sort(got)
		matched := false
		for prefix, w := range want {
			if strings.HasPrefix(o.name, prefix) {
				matched, seen[prefix] = true, true
				if !slices.Equal(got, w) {
					t.Errorf("%s mounts secrets %q, want %q", o.name, got, w)
				}
			}
		}
		if !matched && len(got) > 0 {
			t.Errorf("%s mounts secrets %q, want none", o.name, got)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("pip steps seen: %v, want %d", seen, len(want))
	}
}

// TestLayersSecretStore: the build serves a layer's secrets under the ids
// its step mounts them with, from the files the spec resolved, or from
// the caller's contents by source; a secret given as an env variable
// without its trailing newline.
func TestLayersSecretStore(t *testing.T) {
	img := loadSpec(t, "name: s\nbase_image: "+testBase+"\npip_secret_mounts: [[top.conf, /etc/pip.conf]]\nlayers:\n  - packages: [a]\n    pip_secret_mounts: [[keys/netrc, /root/.netrc], [keys/token, /run/token], {source: keys/url, env: PIP_INDEX_URL}, {source: keys/given-url, env: U}]\n",
		map[string]string{"top.conf": "top\n", "keys/netrc": "netrc", "keys/token": "token", "keys/url": "http://u:p@h/simple\r\n", "keys/given-url": "x"})
	s := newSecretStore(img, map[string][]byte{"keys/token": []byte("given"), "keys/given-url": []byte("given-url\n")}, nil)
	// A file keeps its bytes; an env variable loses one trailing newline.
	for id, want := range map[string]string{"ispec-pip-secret-0": "top\n", "ispec-layer-0-pip-secret-0": "netrc", "ispec-layer-0-pip-secret-1": "given",
		"ispec-layer-0-pip-secret-2": "http://u:p@h/simple", "ispec-layer-0-pip-secret-3": "given-url"} {
		got, err := s.GetSecret(context.Background(), id)
		if err != nil || string(got) != want {
			t.Errorf("secret %s = %q, %v; want %q", id, got, err, want)
		}
	}
	if _, err := s.GetSecret(context.Background(), "ispec-layer-1-pip-secret-0"); err == nil {
		t.Error("a secret no layer mounts was served")
	}
}

// TestLayersBranchesOnlyForFlatSteps: the flat apt, venv and copy steps
// run as parallel branches (a diff of each on the base, merged), as they
// always did; independent apt and copy items of layers never do, not
// even side by side at the start of a spec without flat fields: each is
// one op on the op before it, and no diff or merge takes any of them.
func TestLayersBranchesOnlyForFlatSteps(t *testing.T) {
	files := map[string]string{"conf/a.conf": "a\n", "b.txt": "b\n", "c.txt": "c\n"}
	layers := "layers:\n  - apt_packages: [curl]\n  - apt_packages: [git]\n  - copy: [{src: b.txt, dst: /b.txt}]\n  - copy: [{src: c.txt, dst: /c.txt}]\n"
	wantLayers := []string{"[ispec] layers[0] apt_packages curl", "[ispec] layers[1] apt_packages git", "[ispec] layers[2] copy b.txt:/b.txt", "[ispec] layers[3] copy c.txt:/c.txt"}
	for _, tc := range []struct {
		name, flat string
		branches   []string // the flat steps taken as diffs into a merge
	}{
		{"layers only", "", nil},
		{"after flat apt, packages and copy", "apt_packages: [jq]\npackages: [x]\ncopy: [conf]\n",
			[]string{"[ispec] layer of apt-get install jq", "[ispec] layer of copy conf", "[ispec] layer of python3 -m venv /opt/venv"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := loadSpec(t, "name: b\nbase_image: "+testBase+"\nuser: root\n"+tc.flat+layers, files)
			st, err := Graph(img, Input{Platform: amd64, Base: testBase, Accounts: debianAccounts()})
			if err != nil {
				t.Fatal(err)
			}
			ops, all := chain(t, st)
			got := names(ops)
			if len(got) < len(wantLayers) || !slices.Equal(got[len(got)-len(wantLayers):], wantLayers) {
				t.Fatalf("chain ends %q, want %q", got, wantLayers)
			}
			// Each layer's op has one file system input: the op before it.
			for i := len(got) - len(wantLayers); i < len(got); i++ {
				if rootInput(ops[i]) != ops[i-1].digest {
					t.Errorf("%s does not run on %s", ops[i].name, ops[i-1].name)
				}
			}
			var diffs []string
			merges := 0
			for _, o := range all {
				switch {
				case o.GetDiff() != nil:
					diffs = append(diffs, o.name)
				case o.GetMerge() != nil:
					merges++
				}
				if strings.Contains(o.name, "layers[") && (o.GetDiff() != nil || o.GetMerge() != nil) {
					t.Errorf("a layer item went into a branch: %s", o.name)
				}
			}
			slices.Sort(diffs)
			if !slices.Equal(diffs, tc.branches) || (len(tc.branches) > 0) != (merges > 0) {
				t.Errorf("diffs %q (%d merges), want %q", diffs, merges, tc.branches)
			}
		})
	}
}

// TestPipStepEnvIsReserved: every env variable a pip step sets, on a base
// with no env of its own, is one spec.PipStepEnv names, so that a secret
// given as an env variable can never take one of them.
func TestPipStepEnvIsReserved(t *testing.T) {
	img := loadSpec(t, "name: s\nbase_image: "+testBase+"\nlayers:\n  - packages: [a==1]\n", nil)
	reserved := spec.PipStepEnv()
	steps := 0
	for _, o := range graph(t, img, nil) {
		ex := o.GetExec()
		if ex == nil || !strings.HasPrefix(o.name, "[ispec] layers[0] packages") {
			continue
		}
		steps++
		for _, e := range ex.Meta.Env {
			k, _, _ := strings.Cut(e, "=")
			if !slices.Contains(reserved, k) {
				t.Errorf("the pip step sets %s, which spec.PipStepEnv does not name", k)
			}
		}
	}
	if steps == 0 {
		t.Fatal("no pip step in the graph")
	}
}

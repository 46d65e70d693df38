package builder

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/client/llb"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"
	"google.golang.org/protobuf/proto"

	"github.com/ispec-dev/ispec/spec"
)

const testBase = "127.0.0.1:5000/fixtures/debian-python:bookworm"

var amd64 = ocispecs.Platform{OS: "linux", Architecture: "amd64"}

// loadSpec writes a spec file and the files it names into a temporary
// folder and loads it.
func loadSpec(t *testing.T, doc string, files map[string]string) *spec.Image {
	t.Helper()
	return loadSpecIn(t, t.TempDir(), doc, files)
}

// loadSpecIn is loadSpec in a given folder.
func loadSpecIn(t *testing.T, dir, doc string, files map[string]string) *spec.Image {
	t.Helper()
	for name, content := range files {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, ".sh") {
			mode = 0o755
		}
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	file := filepath.Join(dir, "spec.yaml")
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := spec.Load(context.Background(), file, spec.Options{})
	if err != nil {
		t.Fatalf("loading spec: %v", err)
	}
	return img
}

const fullSpec = `
name: demo
registry: 127.0.0.1:5000/test
base_image: ` + testBase + `
apt_packages: [jq, curl]
packages: ["ispec-demo-a==1.0.0", "ispec-demo-b==2.0.0"]
requirements: requirements.txt
pip_index: http://127.0.0.1:8080/simple
pip_extra_index_url: [http://127.0.0.1:8081/simple]
pip_extra_args: "--prefer-binary --timeout '30'"
pip_secret_mounts: [{source: netrc, target: /root/.netrc}]
env: {APP_MODE: test, LANG: C.UTF-8}
commands: ["echo one > /one", "echo two > /two"]
copy: [bin/run.sh, conf]
source_root: src
workdir: /app
entrypoint: [/app/bin/run.sh]
user: root
`

var fullFiles = map[string]string{
	"requirements.txt": "ispec-demo-a==1.1.0\n",
	"bin/run.sh":       "#!/bin/sh\necho hi\n",
	"conf/a.conf":      "a\n",
	"conf/sub/b.conf":  "b\n",
	"src/main.py":      "print('hi')\n",
	"netrc":            "machine 127.0.0.1 login u password p\n",
}

// op is one marshalled LLB op with its name.
type op struct {
	*pb.Op
	name   string
	digest digest.Digest
}

// chain marshals a state and returns the ops that make its root file
// system, from the base image to the last step, following each op's
// root input.
func chain(t *testing.T, st llb.State) ([]op, map[digest.Digest]op) {
	t.Helper()
	def, err := st.Marshal(context.Background(), llb.Platform(amd64))
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	ops := map[digest.Digest]op{}
	var last digest.Digest
	for i, dt := range def.Def {
		var o pb.Op
		if err := proto.Unmarshal(dt, &o); err != nil {
			t.Fatalf("unmarshal op: %v", err)
		}
		d := digest.FromBytes(dt)
		name := ""
		if md, ok := def.Metadata[d]; ok {
			name = md.Description["llb.customname"]
		}
		ops[d] = op{Op: &o, name: name, digest: d}
		if i == len(def.Def)-1 {
			last = digest.Digest(o.Inputs[0].Digest)
		}
	}
	var out []op
	for d := last; d != ""; {
		o, ok := ops[d]
		if !ok {
			t.Fatalf("op %s not in definition", d)
		}
		out = append([]op{o}, out...)
		d = rootInput(o)
	}
	return out, ops
}

// rootInput is the digest of the op an op's root file system comes from.
func rootInput(o op) digest.Digest {
	switch {
	case o.GetExec() != nil:
		for _, m := range o.GetExec().Mounts {
			if m.Dest == "/" {
				return digest.Digest(o.Inputs[m.Input].Digest)
			}
		}
	case o.GetFile() != nil:
		a := o.GetFile().Actions[0]
		if a.Input >= 0 && int(a.Input) < len(o.Inputs) {
			return digest.Digest(o.Inputs[a.Input].Digest)
		}
	}
	return ""
}

func names(ops []op) []string {
	var out []string
	for _, o := range ops {
		out = append(out, o.name)
	}
	return out
}

// graph returns the ops of the linear graph, one per step after the base;
// merge_test.go checks that the merged graph runs the same ops.
func graph(t *testing.T, img *spec.Image, baseConfig []byte) []op {
	t.Helper()
	st, err := Graph(img, Input{Platform: amd64, Base: testBase, Accounts: debianAccounts(), BaseConfig: baseConfig, Linear: true})
	if err != nil {
		t.Fatalf("Graph: %v", err)
	}
	ops, _ := chain(t, st)
	return ops
}

func TestGraphLayerOrder(t *testing.T) {
	img := loadSpec(t, fullSpec, fullFiles)
	ops := graph(t, img, nil)
	want := []string{
		"[ispec] base " + testBase,
		"[ispec] apt-get install curl jq",
		"[ispec] python3 -m venv /opt/venv",
		"[ispec] pip install -r requirements",
		"[ispec] pip install ispec-demo-a==1.0.0 ispec-demo-b==2.0.0",
		"[ispec] commands[0] echo one > /one",
		"[ispec] commands[1] echo two > /two",
		"[ispec] copy bin/run.sh",
		"[ispec] copy conf",
		"[ispec] copy source_root src",
	}
	if got := names(ops); !slices.Equal(got, want) {
		t.Fatalf("steps:\ngot  %q\nwant %q", got, want)
	}
	if id := ops[0].GetSource().Identifier; id != "docker-image://"+testBase {
		t.Errorf("base identifier = %q", id)
	}
	if p := ops[0].Platform; p == nil || p.OS != "linux" || p.Architecture != "amd64" {
		t.Errorf("base platform = %v", p)
	}
	// Steps and history agree.
	steps, err := Steps(img, Input{Platform: amd64, Base: testBase, Accounts: debianAccounts()})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range steps {
		if s.Name != want[i+1] {
			t.Errorf("step %d name %q, graph %q", i, s.Name, want[i+1])
		}
	}
}

func TestGraphMinimal(t *testing.T) {
	img := loadSpec(t, "name: tiny\nbase_image: 127.0.0.1:5000/fixtures/busybox:1\nuser: root\n", nil)
	ops := graph(t, img, nil)
	if len(ops) != 1 || ops[0].GetSource() == nil {
		t.Fatalf("a spec with nothing to do should be its base only, got %q", names(ops))
	}
}

func TestGraphSkipsPythonWithoutPackages(t *testing.T) {
	img := loadSpec(t, "name: tiny\nbase_image: "+testBase+"\napt_packages: [jq]\ncommands: [\"true\"]\n", nil)
	for _, n := range names(graph(t, img, nil)) {
		if strings.Contains(n, "venv") || strings.Contains(n, "pip") {
			t.Errorf("unexpected Python step %q", n)
		}
	}
}

func TestAptStep(t *testing.T) {
	img := loadSpec(t, fullSpec, fullFiles)
	apt := graph(t, img, nil)[1].GetExec()
	if apt == nil {
		t.Fatal("apt step is not an exec")
	}
	args := apt.Meta.Args
	if len(args) < 4 || args[0] != "/bin/sh" || args[1] != "-c" || args[2] != aptScript {
		t.Fatalf("apt args = %q", args)
	}
	if got := args[4:]; !slices.Equal(got, []string{"curl", "jq"}) {
		t.Errorf("package arguments = %q, want separate arguments curl, jq", got)
	}
	for _, want := range []string{"SOURCE_DATE_EPOCH=0", "DEBIAN_FRONTEND=noninteractive"} {
		if !slices.Contains(apt.Meta.Env, want) {
			t.Errorf("apt env %q lacks %s", apt.Meta.Env, want)
		}
	}
	for _, p := range []string{"/var/log/apt", "/var/log/dpkg.log", "/var/cache/ldconfig/aux-cache", "/var/cache/debconf/*-old"} {
		if !strings.Contains(aptScript, p) {
			t.Errorf("apt step does not remove %s", p)
		}
	}
	caches := map[string]*pb.Mount{}
	for _, m := range apt.Mounts {
		if m.MountType == pb.MountType_CACHE {
			caches[m.Dest] = m
		}
	}
	for _, dest := range []string{"/var/lib/apt/lists", "/var/cache/apt"} {
		m := caches[dest]
		if m == nil {
			t.Errorf("no cache mount at %s", dest)
			continue
		}
		if m.CacheOpt.Sharing != pb.CacheSharingOpt_LOCKED {
			t.Errorf("cache %s sharing = %v, want LOCKED", dest, m.CacheOpt.Sharing)
		}
		if !strings.Contains(m.CacheOpt.ID, "linux/amd64") {
			t.Errorf("cache %s id %q is not per platform", dest, m.CacheOpt.ID)
		}
	}
}

// TestAptInjection: a package name is never shell code, even one that
// validation would reject.
func TestAptInjection(t *testing.T) {
	img := loadSpec(t, "name: x\nbase_image: "+testBase+"\napt_packages: [jq]\n", nil)
	evil := "jq; rm -rf /"
	img.Spec.AptPackages = []string{evil, "$(touch /pwned)"}
	_, all := chain(t, mustGraph(t, img))
	found := false
	for _, o := range all {
		ex := o.GetExec()
		if ex == nil {
			continue
		}
		args := ex.Meta.Args
		for i, a := range args {
			if i > 0 && args[i-1] == "-c" && (strings.Contains(a, evil) || strings.Contains(a, "touch /pwned")) {
				t.Errorf("package name inside a shell script: %q", a)
			}
			if a == evil {
				found = true
				if i <= 2 {
					t.Errorf("package name at argument %d of %q", i, args)
				}
			}
		}
	}
	if !found {
		t.Error("package name not passed as its own argument")
	}
}

// mustGraph returns the linear graph of img.
func mustGraph(t *testing.T, img *spec.Image) llb.State {
	t.Helper()
	st, err := Graph(img, Input{Platform: amd64, Base: testBase, Accounts: debianAccounts(), Linear: true})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestPythonSteps(t *testing.T) {
	img := loadSpec(t, fullSpec, fullFiles)
	ops := graph(t, img, []byte(`{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/usr/bin:/bin","LANG=C"]}}`))

	venv := ops[2].GetExec()
	if got := venv.Meta.Args; len(got) != 5 || got[2] != venvScript || got[4] != "python3" {
		t.Errorf("venv args = %q", got)
	}
	if !slices.Contains(venv.Meta.Env, "SOURCE_DATE_EPOCH=0") {
		t.Errorf("venv env %q lacks SOURCE_DATE_EPOCH=0", venv.Meta.Env)
	}

	wantPip := []string{
		"/opt/venv/bin/python", "-m", "pip", "install", "--no-compile",
		"--index-url", "http://127.0.0.1:8080/simple",
		"--extra-index-url", "http://127.0.0.1:8081/simple",
		"--prefer-binary", "--timeout", "30",
	}
	req := ops[3].GetExec()
	if got, want := req.Meta.Args, append(slices.Clone(wantPip), "-r", "/run/ispec/requirements/requirements.txt"); !slices.Equal(got, want) {
		t.Errorf("requirements args:\ngot  %q\nwant %q", got, want)
	}
	pkgs := ops[4].GetExec()
	if got, want := pkgs.Meta.Args, append(slices.Clone(wantPip), "ispec-demo-a==1.0.0", "ispec-demo-b==2.0.0"); !slices.Equal(got, want) {
		t.Errorf("packages args:\ngot  %q\nwant %q", got, want)
	}
	for _, ex := range []*pb.ExecOp{req, pkgs} {
		for _, want := range []string{"SOURCE_DATE_EPOCH=0", "PYTHONDONTWRITEBYTECODE=1", "PIP_DISABLE_PIP_VERSION_CHECK=1", "PATH=/opt/venv/bin:/usr/bin:/bin", "VIRTUAL_ENV=/opt/venv"} {
			if !slices.Contains(ex.Meta.Env, want) {
				t.Errorf("pip env %q lacks %s", ex.Meta.Env, want)
			}
		}
		for _, e := range ex.Meta.Env {
			if strings.HasPrefix(e, "APP_MODE=") {
				t.Errorf("spec env %q reaches a pip step; changing it would re-run pip", e)
			}
		}
		var cache, secret bool
		for _, m := range ex.Mounts {
			switch m.MountType {
			case pb.MountType_CACHE:
				cache = m.Dest == "/root/.cache/pip"
			case pb.MountType_SECRET:
				secret = m.Dest == "/root/.netrc" && m.SecretOpt.ID == "ispec-pip-secret-0" && m.SecretOpt.Mode == 0o400
			}
		}
		if !cache || !secret {
			t.Errorf("pip mounts: cache %v, secret %v: %v", cache, secret, ex.Mounts)
		}
	}
	var reqMount bool
	for _, m := range req.Mounts {
		if m.Dest == requirementsDir && m.Readonly {
			reqMount = true
		}
	}
	if !reqMount {
		t.Error("requirements file is not mounted read-only")
	}
}

// TestRequirementsStepMountsIncludes: pip reads the requirements file from
// the mount of the whole requirements tree, so that the files it includes
// are beside it, and the mount comes from the requirements local source.
func TestRequirementsStepMountsIncludes(t *testing.T) {
	img := loadSpec(t, "name: x\nbase_image: "+testBase+"\nrequirements: reqs/app.txt\n", map[string]string{
		"reqs/app.txt":  "-r base.txt\n-c ../pins.txt\nispec-demo-a\n",
		"reqs/base.txt": "ispec-demo-b\n",
		"pins.txt":      "ispec-demo-a==1.0.0\n",
	})
	st := mustGraph(t, img)
	ops, all := chain(t, st)
	var req *pb.ExecOp
	var reqOp op
	for _, o := range ops {
		if o.name == "[ispec] pip install -r requirements" {
			req, reqOp = o.GetExec(), o
		}
	}
	if req == nil {
		t.Fatalf("no requirements step in %q", names(ops))
	}
	if got := req.Meta.Args[len(req.Meta.Args)-2:]; !slices.Equal(got, []string{"-r", "/run/ispec/requirements/reqs/app.txt"}) {
		t.Errorf("requirements args end %q", got)
	}
	var mounted bool
	for _, m := range req.Mounts {
		if m.Dest != requirementsDir {
			continue
		}
		src := all[digest.Digest(reqOp.Inputs[m.Input].Digest)]
		if l := src.GetSource(); l == nil || l.Identifier != "local://requirements" || !m.Readonly {
			t.Errorf("requirements mount from %v (readonly %v), want local://requirements", src.Op, m.Readonly)
		}
		mounted = true
	}
	if !mounted {
		t.Fatal("requirements tree not mounted")
	}
	var files []string
	for _, e := range img.Requirements.Entries {
		if e.Kind == spec.KindFile {
			files = append(files, e.Path)
		}
	}
	if want := []string{"pins.txt", "reqs/app.txt", "reqs/base.txt"}; !slices.Equal(files, want) {
		t.Errorf("requirements tree files %q, want %q", files, want)
	}
}

func TestPythonVersionPicksInterpreter(t *testing.T) {
	img := loadSpec(t, "name: x\nbase_image: "+testBase+"\npython_version: \"3.11\"\n", nil)
	ops := graph(t, img, nil)
	if got := ops[len(ops)-1].GetExec().Meta.Args; got[len(got)-1] != "python3.11" {
		t.Errorf("venv interpreter args = %q, want python3.11 last", got)
	}
}

func TestCommandSteps(t *testing.T) {
	img := loadSpec(t, fullSpec, fullFiles)
	ops := graph(t, img, nil)
	for i, o := range ops[5:7] {
		ex := o.GetExec()
		if got, want := ex.Meta.Args, []string{"/bin/sh", "-c", img.Spec.Commands[i]}; !slices.Equal(got, want) {
			t.Errorf("command %d args = %q, want %q", i, got, want)
		}
		if ex.Meta.Cwd != "/app" {
			t.Errorf("command %d cwd = %q", i, ex.Meta.Cwd)
		}
		for _, want := range []string{"APP_MODE=test", "LANG=C.UTF-8", "SOURCE_DATE_EPOCH=0", "PYTHONDONTWRITEBYTECODE=1"} {
			if !slices.Contains(ex.Meta.Env, want) {
				t.Errorf("command %d env %q lacks %s", i, ex.Meta.Env, want)
			}
		}
	}
}

func TestCopySteps(t *testing.T) {
	img := loadSpec(t, fullSpec, fullFiles)
	ops, all := chain(t, mustGraph(t, img))
	want := []struct{ local, src, dest string }{
		{"copy-0", "/file", "/app/bin/run.sh"},
		{"copy-1", "/", "/app/conf"},
		{"source", "/", "/app"},
	}
	for i, o := range ops[7:] {
		f := o.GetFile()
		if f == nil || len(f.Actions) != 1 || f.Actions[0].GetCopy() == nil {
			t.Fatalf("step %q is not a copy", o.name)
		}
		cp := f.Actions[0].GetCopy()
		if cp.Src != want[i].src || cp.Dest != want[i].dest {
			t.Errorf("copy %d: %s -> %s, want %s -> %s", i, cp.Src, cp.Dest, want[i].src, want[i].dest)
		}
		if cp.Owner == nil || cp.Owner.User.GetByID() != 0 || cp.Owner.Group.GetByID() != 0 || cp.Owner.User.GetByName() != nil {
			t.Errorf("copy %d owner = %v, want 0:0", i, cp.Owner)
		}
		if cp.Mode != -1 && cp.Mode != 0 {
			t.Errorf("copy %d forces mode %o; files keep their own", i, cp.Mode)
		}
		if cp.FollowSymlink {
			t.Errorf("copy %d follows symlinks", i)
		}
		if cp.Timestamp != 0 {
			t.Errorf("copy %d timestamp = %d, want the epoch", i, cp.Timestamp)
		}
		src := all[digest.Digest(o.Inputs[f.Actions[0].SecondaryInput].Digest)]
		if id := src.GetSource().Identifier; id != "local://"+want[i].local {
			t.Errorf("copy %d source = %q, want local://%s", i, id, want[i].local)
		}
	}
}

func TestCondaRefused(t *testing.T) {
	// spec refuses conda_packages at load; a spec made in memory is
	// refused by the builder too.
	img := loadSpec(t, "name: x\nbase_image: "+testBase+"\nconda_channels: [conda-forge]\n", nil)
	if _, err := Graph(img, Input{Platform: amd64, Base: testBase, Accounts: debianAccounts()}); err != nil {
		t.Errorf("conda channels alone: %v, want a graph (they install nothing)", err)
	}
	img.Spec.CondaPackages = []string{"numpy"}
	if _, err := Graph(img, Input{Platform: amd64, Base: testBase, Accounts: debianAccounts()}); err == nil || !strings.Contains(err.Error(), "conda") {
		t.Errorf("conda spec: err = %v, want an error naming conda", err)
	}
}

// TestPackageChangeKeepsAptStep: changing a pip package leaves the apt
// step's op, and so its cache key, unchanged.
func TestPackageChangeKeepsAptStep(t *testing.T) {
	dir := t.TempDir()
	a := loadSpecIn(t, dir, fullSpec, fullFiles)
	b := loadSpecIn(t, dir, strings.Replace(fullSpec, "ispec-demo-a==1.0.0", "ispec-demo-a==1.1.0", 1), fullFiles)
	ga, gb := graph(t, a, nil), graph(t, b, nil)
	for i := 0; i <= 3; i++ {
		if ga[i].digest != gb[i].digest {
			t.Errorf("step %q changed with a pip package", ga[i].name)
		}
	}
	if ga[4].digest == gb[4].digest {
		t.Error("the packages step did not change with its packages")
	}
}

func TestGraphBaseConfigEnv(t *testing.T) {
	img := loadSpec(t, "name: x\nbase_image: "+testBase+"\ncommands: [\"true\"]\n", nil)
	cfg, _ := json.Marshal(ocispecs.Image{Platform: amd64, Config: ocispecs.ImageConfig{Env: []string{"PATH=/custom/bin:/bin", "FOO=bar"}}})
	ops := graph(t, img, cfg)
	env := commandEnv(t, ops)
	for _, want := range []string{"PATH=/custom/bin:/bin:/usr/local/nvidia/bin:/usr/local/cuda/bin", "FOO=bar"} {
		if !slices.Contains(env, want) {
			t.Errorf("command env %q lacks the base's %s", env, want)
		}
	}
}

// TestPipNetrc: index credentials from the configuration are a secret of
// the pip steps only, named by $NETRC; no other step sees them.
func TestPipNetrc(t *testing.T) {
	img := loadSpec(t, "name: a\npython_version: \"3.11\"\napt_packages: [jq]\npackages: [x==1]\ncommands: [\"true\"]\n", nil)
	for _, linear := range []bool{true, false} {
		st, err := Graph(img, Input{Platform: amd64, Base: testBase, Accounts: debianAccounts(), PipNetrc: true, Linear: linear})
		if err != nil {
			t.Fatal(err)
		}
		_, all := chain(t, st)
		checkNetrcOnPipOnly(t, all)
	}
}

func checkNetrcOnPipOnly(t *testing.T, all map[digest.Digest]op) {
	t.Helper()
	for _, o := range all {
		ex := o.GetExec()
		if ex == nil {
			continue
		}
		var secret bool
		for _, m := range ex.Mounts {
			if m.MountType == pb.MountType_SECRET && m.SecretOpt.ID == NetrcSecretID {
				secret = m.Dest == netrcPath && m.SecretOpt.Mode == 0o400
			}
		}
		env := slices.Contains(ex.Meta.Env, "NETRC="+netrcPath)
		isPip := strings.Contains(o.name, "pip install")
		if secret != isPip || env != isPip {
			t.Errorf("%s: netrc secret %v, NETRC env %v; want both only on pip steps", o.name, secret, env)
		}
	}
}

// TestGraphStartsFromTheResolvedBase: with Input.From (the base resolved
// to a digest) the graph pulls that image, whatever the tag names now;
// the step and the image's config still name the base as the spec does.
func TestGraphStartsFromTheResolvedBase(t *testing.T) {
	img := loadSpec(t, "name: app\nbase_image: "+testBase+"\npackages: [a==1]\n", nil)
	from := spec.Repository(testBase) + "@sha256:" + strings.Repeat("a", 64)
	in := Input{Platform: amd64, Base: testBase, From: from, Accounts: debianAccounts(), Linear: true}
	st, err := Graph(img, in)
	if err != nil {
		t.Fatal(err)
	}
	ops, _ := chain(t, st)
	if id := ops[0].GetSource().Identifier; id != "docker-image://"+from {
		t.Errorf("base identifier = %q, want the resolved %q", id, from)
	}
	if n := names(ops)[0]; n != "[ispec] base "+testBase {
		t.Errorf("base step named %q", n)
	}
	cfg, err := Config(img, in, ConfigInput{BaseDigest: "sha256:" + strings.Repeat("a", 64)})
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Config.Labels[labelBaseName]; got != testBase {
		t.Errorf("base name label = %q, want %q", got, testBase)
	}
}

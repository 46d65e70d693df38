package builder

import (
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"
	"google.golang.org/protobuf/proto"

	"github.com/ispec-dev/ispec/spec"
)

// merged is the marshalled merged graph of a spec.
type merged struct {
	all  map[digest.Digest]op
	last op // the op whose output is the image
}

func mergedOf(t *testing.T, img *spec.Image) merged {
	t.Helper()
	st, err := Graph(img, Input{Platform: amd64, Base: testBase, Accounts: debianAccounts()})
	if err != nil {
		t.Fatalf("Graph: %v", err)
	}
	ops, all := chain(t, st)
	return merged{all: all, last: ops[len(ops)-1]}
}

// byName returns the op named name (a step's name).
func (m merged) byName(t *testing.T, name string) op {
	t.Helper()
	for _, o := range m.all {
		if o.name == name {
			return o
		}
	}
	t.Fatalf("no op named %q", name)
	return op{}
}

// dependsOn reports whether a's result is made from b's.
func (m merged) dependsOn(a, b op) bool {
	seen := map[digest.Digest]bool{}
	todo := []digest.Digest{a.digest}
	for len(todo) > 0 {
		d := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		for _, in := range m.all[d].Inputs {
			id := digest.Digest(in.Digest)
			if id == b.digest {
				return true
			}
			if !seen[id] {
				seen[id] = true
				todo = append(todo, id)
			}
		}
	}
	return false
}

// input returns the op of a's i-th input.
func (m merged) input(a op, i int) op { return m.all[digest.Digest(a.Inputs[i].Digest)] }

const (
	nameApt  = "[ispec] apt-get install curl jq"
	nameVenv = "[ispec] python3 -m venv /opt/venv"
	nameReq  = "[ispec] pip install -r requirements"
	namePkgs = "[ispec] pip install ispec-demo-a==1.0.0 ispec-demo-b==2.0.0"
	nameCmd0 = "[ispec] commands[0] echo one > /one"
	nameCmd1 = "[ispec] commands[1] echo two > /two"
)

var nameCopies = []string{"[ispec] copy bin/run.sh", "[ispec] copy conf", "[ispec] copy source_root src"}

// TestMergedGraphDependencies: the venv is made beside the apt step, pip
// runs on both, commands on pip, and the copies on the base alone, their
// layers merged on top in the order of the image's history.
func TestMergedGraphDependencies(t *testing.T) {
	m := mergedOf(t, loadSpec(t, fullSpec, fullFiles))
	base := m.byName(t, "[ispec] base "+testBase)
	apt, venv := m.byName(t, nameApt), m.byName(t, nameVenv)
	req, pkgs := m.byName(t, nameReq), m.byName(t, namePkgs)
	cmd0, cmd1 := m.byName(t, nameCmd0), m.byName(t, nameCmd1)

	for _, c := range []struct {
		a, b op
		want bool
	}{
		{venv, apt, false}, {apt, venv, false}, {venv, base, true}, {apt, base, true},
		{req, apt, true}, {req, venv, true}, {pkgs, req, true},
		{cmd0, pkgs, true}, {cmd1, cmd0, true},
	} {
		if got := m.dependsOn(c.a, c.b); got != c.want {
			t.Errorf("%q depends on %q: %v, want %v", c.a.name, c.b.name, got, c.want)
		}
	}
	for _, n := range nameCopies {
		cp := m.byName(t, n)
		for _, step := range []op{apt, venv, req, pkgs, cmd0, cmd1} {
			if m.dependsOn(cp, step) {
				t.Errorf("%q depends on %q", n, step.name)
			}
		}
		if rootInput(cp) != base.digest {
			t.Errorf("%q runs on %v, want the base", n, rootInput(cp))
		}
	}

	// The image: a merge of the commands' result and the copies' layers.
	top := m.last.GetMerge()
	if top == nil {
		t.Fatalf("the image is %q, want a merge", m.last.name)
	}
	if got := m.input(m.last, 0); got.digest != cmd1.digest {
		t.Errorf("the top merge starts with %q, want the last command", got.name)
	}
	if len(m.last.Inputs) != 1+len(nameCopies) {
		t.Fatalf("the top merge has %d inputs, want %d", len(m.last.Inputs), 1+len(nameCopies))
	}
	for i, n := range nameCopies {
		checkDiff(t, m, m.input(m.last, i+1), base, n)
	}

	// The apt and venv layers: a merge of the base and their diffs, which
	// pip runs on.
	lower := m.input(req, 0)
	for _, mnt := range req.GetExec().Mounts {
		if mnt.Dest == "/" {
			lower = m.input(req, int(mnt.Input))
		}
	}
	if lower.GetMerge() == nil || len(lower.Inputs) != 3 {
		t.Fatalf("pip runs on %q, want a merge of the base, apt and venv", lower.name)
	}
	if got := m.input(lower, 0); got.digest != base.digest {
		t.Errorf("the first merge starts with %q, want the base", got.name)
	}
	checkDiff(t, m, m.input(lower, 1), base, nameApt)
	checkDiff(t, m, m.input(lower, 2), base, nameVenv)
}

// checkDiff checks that d is the layer of the step named upper: a diff
// from lower to that step's result.
func checkDiff(t *testing.T, m merged, d, lower op, upper string) {
	t.Helper()
	if d.GetDiff() == nil || len(d.Inputs) != 2 {
		t.Errorf("%q is not a diff (layer of %q)", d.name, upper)
		return
	}
	if got := m.input(d, 0); got.digest != lower.digest {
		t.Errorf("layer of %q: lower %q, want %q", upper, got.name, lower.name)
	}
	if got := m.input(d, 1); got.name != upper {
		t.Errorf("layer of %q: upper %q", upper, got.name)
	}
}

// TestMergedGraphSameSteps: every step runs the same operation (arguments,
// env, working directory, mounts, copy options) in both graphs; only what
// it runs on differs.
func TestMergedGraphSameSteps(t *testing.T) {
	for _, doc := range []string{
		fullSpec,
		strings.Replace(fullSpec, "apt_packages: [jq, curl]", "apt_packages: [jq, python3-venv]", 1),
		"name: x\nbase_image: " + testBase + "\napt_packages: [jq]\ncopy: [conf]\n",
		"name: x\nbase_image: " + testBase + "\npackages: [ispec-demo-a]\ncommands: [\"true\"]\n",
		"name: x\nbase_image: " + testBase + "\nsource_root: src\n",
	} {
		img := loadSpec(t, doc, fullFiles)
		_, lin := chain(t, mustGraph(t, img))
		m := mergedOf(t, img)
		steps, err := Steps(img, Input{Platform: amd64, Base: testBase, Accounts: debianAccounts()})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range steps {
			var l op
			for _, o := range lin {
				if o.name == s.Name {
					l = o
				}
			}
			g := m.byName(t, s.Name)
			if !proto.Equal(withoutInputs(l), withoutInputs(g)) {
				t.Errorf("step %q differs:\nlinear %v\nmerged %v", s.Name, l.Op, g.Op)
			}
		}
	}
}

// withoutInputs is an op without what it runs on.
func withoutInputs(o op) *pb.Op {
	c := proto.Clone(o.Op).(*pb.Op)
	c.Inputs = nil
	return c
}

// TestMergedGraphCacheKeys: changing the apt set leaves the venv step's
// op, and so its cache key, unchanged; changing the commands leaves the
// copies' ops unchanged.
func TestMergedGraphCacheKeys(t *testing.T) {
	dir := t.TempDir()
	a := mergedOf(t, loadSpecIn(t, dir, fullSpec, fullFiles))
	b := mergedOf(t, loadSpecIn(t, dir, strings.Replace(fullSpec, "[jq, curl]", "[jq, curl, git]", 1), fullFiles))
	if a.byName(t, nameVenv).digest != b.byName(t, nameVenv).digest {
		t.Error("the venv step changed with the apt set")
	}
	if a.byName(t, nameReq).digest == b.byName(t, nameReq).digest {
		t.Error("the pip step did not change with the apt set; it must see apt's libraries")
	}
	c := mergedOf(t, loadSpecIn(t, dir, strings.Replace(fullSpec, "echo two > /two", "echo 2 > /two", 1), fullFiles))
	for _, n := range nameCopies {
		if a.byName(t, n).digest != c.byName(t, n).digest {
			t.Errorf("%q changed with the commands", n)
		}
	}
}

// TestMergedGraphVenvAfterPythonApt: when apt_packages may install the
// interpreter or its venv module, the venv is made after the apt step.
func TestMergedGraphVenvAfterPythonApt(t *testing.T) {
	for _, pkgs := range []string{"[python3-venv]", "[jq, python3.11]", "[libpython3.11, jq]", "[python-is-python3]"} {
		doc := strings.Replace(fullSpec, "apt_packages: [jq, curl]", "apt_packages: "+pkgs, 1)
		img := loadSpec(t, doc, fullFiles)
		m := mergedOf(t, img)
		steps, _ := Steps(img, Input{Platform: amd64, Base: testBase, Accounts: debianAccounts()})
		apt, venv := m.byName(t, steps[0].Name), m.byName(t, steps[1].Name)
		if !m.dependsOn(venv, apt) {
			t.Errorf("apt_packages %s: the venv does not run after apt", pkgs)
		}
	}
	for _, pkgs := range []string{"[jq]", "[curl, git]", "[libssl-dev]", "[ipython3x]"} {
		doc := strings.Replace(fullSpec, "apt_packages: [jq, curl]", "apt_packages: "+pkgs, 1)
		img := loadSpec(t, doc, fullFiles)
		m := mergedOf(t, img)
		steps, _ := Steps(img, Input{Platform: amd64, Base: testBase, Accounts: debianAccounts()})
		if m.dependsOn(m.byName(t, steps[1].Name), m.byName(t, steps[0].Name)) {
			t.Errorf("apt_packages %s: the venv waits for apt", pkgs)
		}
	}
}

// TestMergedGraphWithoutBranches: a spec with one independent step or
// none needs no merge.
func TestMergedGraphWithoutBranches(t *testing.T) {
	for _, doc := range []string{
		"name: x\nbase_image: " + testBase + "\n",
		"name: x\nbase_image: " + testBase + "\napt_packages: [jq]\n",
		"name: x\nbase_image: " + testBase + "\napt_packages: [jq]\ncommands: [\"true\"]\n",
		"name: x\nbase_image: " + testBase + "\npython_version: \"3.11\"\n",
	} {
		m := mergedOf(t, loadSpec(t, doc, nil))
		for _, o := range m.all {
			if o.GetMerge() != nil || o.GetDiff() != nil {
				t.Errorf("spec %q: unexpected %q", doc, o.name)
			}
		}
	}
	m := mergedOf(t, loadSpec(t, "name: x\nbase_image: "+testBase+"\ncommands: [\"true\"]\ncopy: [conf]\n", fullFiles))
	if m.last.GetMerge() == nil || !slices.Contains(names([]op{m.input(m.last, 1)}), "[ispec] layer of copy conf") {
		t.Errorf("a command and a copy: the image is %q, want the merge of the copy's layer on the command", m.last.name)
	}
}

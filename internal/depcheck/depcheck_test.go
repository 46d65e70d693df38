package depcheck

import (
	"os/exec"
	"strings"
	"testing"
)

// moduleGraph lists the module's packages and everything they depend on,
// each with its direct imports (tests' imports left out).
func moduleGraph(t *testing.T) []Package {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", Module+"/...").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	var g []Package
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		g = append(g, Package{Path: f[0], Imports: f[1:]})
	}
	return g
}

func TestEveryPackageKeepsToItsFence(t *testing.T) {
	for _, v := range Check(moduleGraph(t), Rules()) {
		t.Error(v)
	}
}

func TestEveryRuleNamesAPackage(t *testing.T) {
	have := map[string]bool{}
	for _, p := range moduleGraph(t) {
		if under(p.Path, Module) {
			have[strings.TrimPrefix(strings.TrimPrefix(p.Path, Module), "/")] = true
		}
	}
	for rel, r := range Rules() {
		if !have[rel] {
			t.Errorf("the table has a rule for %s, which is not a package of the module", rel)
		}
		for _, o := range r.Ours {
			if !have[strings.TrimSuffix(o, "/...")] {
				t.Errorf("%s may import %s, which is not a package of the module", rel, o)
			}
		}
	}
}

// withImport returns g with from importing imp too.
func withImport(g []Package, from, imp string) []Package {
	out := make([]Package, len(g))
	for i, p := range g {
		out[i] = p
		if p.Path == from {
			out[i].Imports = append(append([]string(nil), p.Imports...), imp)
		}
	}
	return out
}

func has(vs []Violation, pkg, imp string) bool {
	for _, v := range vs {
		if v.Package == pkg && v.Import == imp {
			return true
		}
	}
	return false
}

func TestTheFenceFailsWhenAForbiddenImportIsAdded(t *testing.T) {
	g := moduleGraph(t)
	for _, c := range []struct{ from, imp, wantPkg, wantDep string }{
		// ensure reaching Redis, directly.
		{"ensure", "github.com/redis/go-redis/v9", "ensure", "github.com/redis/go-redis/v9"},
		// client importing server: not its package to import, and the
		// server's Prometheus and bbolt come with it.
		{"client", Module + "/server", "client", Module + "/server"},
		{"client", Module + "/server", "client", "github.com/prometheus/client_golang/prometheus"},
		{"client", Module + "/cache", "client", "go.etcd.io/bbolt"},
		// spec reaching the network.
		{"spec", "net/http", "spec", "net/http"},
		// the server holding Redis's client itself.
		{"server", "github.com/redis/go-redis/v9", "server", "github.com/redis/go-redis/v9"},
	} {
		if has(Check(g, Rules()), c.wantPkg, c.wantDep) {
			t.Fatalf("the module already breaks the rule %s -> %s", c.wantPkg, c.wantDep)
		}
		got := Check(withImport(g, Module+"/"+c.from, c.imp), Rules())
		if !has(got, c.wantPkg, c.wantDep) {
			t.Errorf("%s importing %s: no violation %s -> %s in %v", c.from, c.imp, c.wantPkg, c.wantDep, got)
		}
	}
}

func TestCheckOnAMadeUpGraph(t *testing.T) {
	g := []Package{
		{Path: Module + "/a", Imports: []string{Module + "/b", "fmt"}},
		{Path: Module + "/b", Imports: []string{"example.com/heavy/sub"}},
		{Path: Module + "/new"},
		{Path: "example.com/heavy/sub", Imports: []string{"example.com/heavy"}},
		{Path: "example.com/heavy"},
		{Path: "fmt"},
	}
	rules := map[string]Rule{
		"a": {Never: []string{"example.com/heavy"}},
		"b": {},
	}
	got := Check(g, rules)
	want := []string{
		"a depends on example.com/heavy (through github.com/ispec-dev/ispec/b): must never depend on example.com/heavy",
		"a depends on example.com/heavy/sub (through github.com/ispec-dev/ispec/b): must never depend on example.com/heavy",
		"a imports github.com/ispec-dev/ispec/b: not one of the module's packages it may import",
		"new: not in depcheck's table: say what it may import",
	}
	if len(got) != len(want) {
		t.Fatalf("violations %v, want %q", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("violation %d: %q, want %q", i, got[i], want[i])
		}
	}
	rules["a"] = Rule{Ours: []string{"b"}, Never: []string{"example.com/other"}}
	rules["new"] = Rule{}
	if got := Check(g, rules); len(got) != 0 {
		t.Errorf("allowed graph: violations %v", got)
	}
}

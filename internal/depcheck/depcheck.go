// Package depcheck fences what each package of the module may import: one
// table (Rules) says, for every package, which packages of the module it
// may import directly and which import paths it must never depend on,
// directly or not. Check applies the table to an import graph, so that a
// test can show it on the module (go list) and on a made-up graph alike.
package depcheck

import (
	"fmt"
	"sort"
	"strings"
)

// Module is the module's import path.
const Module = "github.com/ispec-dev/ispec"

// Rule is what one package may depend on.
type Rule struct {
	// Ours are the module's packages (paths relative to the module) it
	// may import directly. A path ending in "/..." allows that package
	// and every package below it.
	Ours []string
	// Never are what it must not depend on, directly or not: a path
	// outside the module and everything below it, or a module package
	// (relative path) alone, or with "/..." every package below it too.
	Never []string
	// NeverDirect are import path prefixes it must not import itself
	// (it may depend on them through a package it may import).
	NeverDirect []string
}

var (
	config     = []string{"github.com/spf13/viper", "github.com/spf13/cobra", "github.com/spf13/pflag"}
	buildkit   = "github.com/moby/buildkit"
	prometheus = "github.com/prometheus"
	redis      = "github.com/redis/go-redis"
	grpc       = "google.golang.org/grpc"
	bbolt      = "go.etcd.io/bbolt"
	network    = []string{"net/http", "github.com/google/go-containerregistry/pkg/v1/remote"}
)

func join(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// Rules is the table: every package of the module, by its path relative
// to the module. A package not in it fails Check.
func Rules() map[string]Rule {
	core := join(config, []string{grpc, prometheus, redis})
	return map[string]Rule{
		// Leaves: the vocabulary adapters share without linking the
		// pipeline, BuildKit or the registry cache.
		"builder/progress": {Never: join(core, []string{buildkit, Module + "/..."})},
		"cache/lookup":     {Never: join(core, []string{buildkit, bbolt, Module + "/..."}, network)},
		"ensure/call":      {Ours: []string{"builder/progress"}, Never: join(core, []string{buildkit, bbolt, "ensure", "spec"})},
		"api/ispec/v1":     {Never: join(config, []string{Module + "/...", buildkit, prometheus, redis, bbolt})},
		// The core.
		"pylock":  {Never: join(core, network, []string{buildkit, Module + "/..."})},
		"spec":    {Ours: []string{"pylock", "internal/atomicfile", "internal/pathutil"}, Never: join(core, network, []string{buildkit})},
		"cache":   {Ours: []string{"cache/lookup", "internal/clock", "internal/netaddr"}, Never: join(core, []string{buildkit, "builder", "ensure"})},
		"builder": {Ours: []string{"spec", "pylock", "builder/progress", "internal/replay", "internal/atomicfile"}, Never: join(config, []string{prometheus, redis, bbolt, "cache", "ensure"})},
		// The lock `ispec lock` writes, for the CLI and the server.
		"locker": {Ours: []string{"builder", "cache", "pylock", "spec"}, Never: join(config, []string{prometheus, redis, "api/...", "ensure", "server", "client", "coord", "pool"}), NeverDirect: []string{grpc}},
		"ensure": {Ours: []string{"builder", "builder/progress", "cache", "cache/lookup", "ensure/call", "spec", "internal/replay", "internal/clock", "internal/randid"},
			Never: join(config, []string{prometheus, redis, "api/...", "server", "client", "coord", "pool"}), NeverDirect: []string{grpc}},
		// Adapters.
		"wire": {Ours: []string{"api/ispec/v1", "builder/progress", "ensure/call", "spec"},
			Never: join(config, []string{buildkit, prometheus, redis, bbolt, "ensure", "builder", "cache", "server", "client"})},
		"client": {Ours: []string{"api/ispec/v1", "wire", "ensure/call", "cache/lookup", "builder/progress", "spec", "internal/netaddr", "internal/pathutil"},
			Never: join(config, []string{buildkit, prometheus, redis, bbolt, "server", "ensure", "builder", "cache", "coord", "pool"})},
		"blobstore": {Never: join(core, []string{buildkit, Module + "/..."})},
		"coord":     {Ours: []string{"ensure", "ensure/call", "builder/progress", "internal/clock", "internal/randid"}, Never: join(config, []string{prometheus, "server", "cmd/...", "pool"})},
		"pool":      {Ours: []string{"builder", "pylock", "spec", "internal/clock"}, Never: join(config, []string{redis, "server", "cmd/...", "ensure", "coord"})},
		"server": {Ours: []string{"api/ispec/v1", "wire", "blobstore", "builder", "builder/progress", "cache", "cache/lookup", "ensure", "ensure/call", "locker", "spec", "pool", "coord", "internal/clock", "internal/netaddr", "internal/replay"},
			Never: join(config, []string{"cmd/...", "client"}), NeverDirect: []string{redis}},
		"cmd/ispec": {Ours: []string{"api/ispec/v1", "wire", "blobstore", "builder", "builder/progress", "cache", "cache/lookup", "client", "coord", "ensure", "ensure/call", "locker", "pool", "pylock", "server", "spec", "internal/assemble", "internal/atomicfile", "internal/clock", "internal/netaddr", "internal/replay"}},
		// The one constructor of the pipeline, for the CLI and the server.
		"internal/assemble": {Ours: []string{"builder", "cache", "coord", "ensure", "pool", "spec"}, Never: []string{"cmd/...", "server", "client"}},
		// Internal helpers.
		"internal/clock":        {Never: []string{Module + "/..."}},
		"internal/replay":       {Never: []string{Module + "/..."}},
		"internal/netaddr":      {Never: []string{Module + "/..."}},
		"internal/ciconfig":     {Never: []string{Module + "/..."}},
		"internal/imagediff":    {Never: []string{Module + "/..."}},
		"internal/pyindex":      {Ours: []string{"internal/atomicfile"}},
		"internal/atomicfile":   {Never: []string{Module + "/..."}},
		"internal/pathutil":     {Never: []string{Module + "/..."}},
		"internal/randid":       {Never: []string{Module + "/..."}},
		"internal/fixture":      {Never: []string{Module + "/..."}},
		"internal/shiptest":     {Never: []string{Module + "/..."}},
		"internal/depcheck":     {Never: []string{Module + "/..."}},
		"internal/testenv":      {Ours: []string{"internal/fixture"}},
		"internal/cmd/devindex": {Ours: []string{"internal/pyindex"}},
		"internal/cmd/fixtures": {Ours: []string{"internal/fixture", "internal/pyindex"}},
	}
}

// Package is one package of an import graph: its path and its direct
// imports.
type Package struct {
	Path    string
	Imports []string
}

// Violation is one import the table forbids.
type Violation struct {
	// Package is the offending package, relative to the module.
	Package string
	// Import is what it imports (directly or not).
	Import string
	// Via is the direct import it depends on Import through; empty for a
	// direct import.
	Via string
	// Reason says which rule it breaks.
	Reason string
}

func (v Violation) String() string {
	switch {
	case v.Import == "":
		return fmt.Sprintf("%s: %s", v.Package, v.Reason)
	case v.Via != "":
		return fmt.Sprintf("%s depends on %s (through %s): %s", v.Package, v.Import, v.Via, v.Reason)
	}
	return fmt.Sprintf("%s imports %s: %s", v.Package, v.Import, v.Reason)
}

// full expands a rule's path: a module package's relative path gets the
// module's prefix; other paths (with a dot in their first element, or
// the standard library's) stay.
func full(p string) string {
	first, _, _ := strings.Cut(p, "/")
	if p == Module || strings.HasPrefix(p, Module+"/") || strings.Contains(first, ".") || isStd(p) {
		return p
	}
	return Module + "/" + p
}

// isStd reports the standard library paths the table names.
func isStd(p string) bool { return p == "net/http" || strings.HasPrefix(p, "net/http/") }

// matches reports whether path is what a Never or NeverDirect entry names.
func matches(path, entry string) bool {
	e := full(entry)
	switch {
	case strings.HasSuffix(e, "/..."):
		return under(path, e)
	case under(e, Module):
		return path == e
	}
	return under(path, e)
}

func under(path, prefix string) bool {
	prefix = strings.TrimSuffix(prefix, "/...")
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// Check applies rules to the graph (every package with its direct
// imports: the module's and all they depend on) and returns every
// violation, sorted: a module package without a rule, a direct import of
// a module package the rule does not list, and a dependency on a path the
// rule forbids.
func Check(graph []Package, rules map[string]Rule) []Violation {
	imports := map[string][]string{}
	for _, p := range graph {
		imports[p.Path] = p.Imports
	}
	var out []Violation
	for _, p := range graph {
		if !under(p.Path, Module) {
			continue
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p.Path, Module), "/")
		rule, ok := rules[rel]
		if !ok {
			out = append(out, Violation{Package: rel, Reason: "not in depcheck's table: say what it may import"})
			continue
		}
		for _, imp := range p.Imports {
			if under(imp, Module) && !allowed(imp, rule.Ours) {
				out = append(out, Violation{Package: rel, Import: imp, Reason: "not one of the module's packages it may import"})
			}
			for _, n := range rule.NeverDirect {
				if matches(imp, n) {
					out = append(out, Violation{Package: rel, Import: imp, Reason: "must not import " + n + " itself"})
				}
			}
		}
		out = append(out, never(p, rel, rule, imports)...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

func allowed(imp string, ours []string) bool {
	for _, o := range ours {
		if under(imp, full(o)) && (strings.HasSuffix(o, "/...") || imp == full(o)) {
			return true
		}
	}
	return false
}

// never walks p's dependencies and reports each forbidden one once, with
// the direct import it comes through.
func never(p Package, rel string, rule Rule, imports map[string][]string) []Violation {
	if len(rule.Never) == 0 {
		return nil
	}
	var out []Violation
	seen := map[string]bool{p.Path: true}
	for _, direct := range p.Imports {
		stack := []string{direct}
		for len(stack) > 0 {
			d := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			if seen[d] {
				continue
			}
			seen[d] = true
			for _, n := range rule.Never {
				if matches(d, n) {
					via := direct
					if via == d {
						via = ""
					}
					out = append(out, Violation{Package: rel, Import: d, Via: via, Reason: "must never depend on " + n})
				}
			}
			stack = append(stack, imports[d]...)
		}
	}
	return out
}

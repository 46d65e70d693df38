package pylock

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
)

type poetryFile struct {
	Package []poetryPackage `toml:"package"`
}

type poetryPackage struct {
	Name         string              `toml:"name"`
	Version      string              `toml:"version"`
	Groups       []string            `toml:"groups"`
	Markers      any                 `toml:"markers"`
	Files        []poetryFileEntry   `toml:"files"`
	Dependencies map[string]any      `toml:"dependencies"`
	Extras       map[string][]string `toml:"extras"`
	Source       *poetrySource       `toml:"source"`
}

type poetryFileEntry struct {
	File string `toml:"file"`
	Hash string `toml:"hash"`
}

type poetrySource struct {
	Type               string `toml:"type"`
	URL                string `toml:"url"`
	Reference          string `toml:"reference"`
	ResolvedReference  string `toml:"resolved_reference"`
	ResolvedReference2 string `toml:"resolved-reference"`
}

type pyprojectFile struct {
	Project struct {
		Dependencies []string `toml:"dependencies"`
	} `toml:"project"`
	Tool struct {
		Poetry struct {
			Dependencies map[string]any `toml:"dependencies"`
		} `toml:"poetry"`
	} `toml:"tool"`
}

// pep508Re takes a requirement apart: name, extras, and marker.
var pep508Re = regexp.MustCompile(`^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?[^;]*(?:;(.*))?$`)

// pep508Edge reads a PEP 508 requirement (or Poetry's "name (>=1)") as
// an edge; ok is false when it does not parse.
func pep508Edge(req string) (edge, bool) {
	m := pep508Re.FindStringSubmatch(req)
	if m == nil {
		return edge{}, false
	}
	e := edge{name: m[1], marker: strings.TrimSpace(m[3])}
	for _, x := range strings.Split(m[2], ",") {
		if x = strings.TrimSpace(x); x != "" {
			e.extras = append(e.extras, x)
		}
	}
	return e, true
}

// poetryEdges reads one [package.dependencies] entry: a constraint
// string, a table, or a list of tables (multiple constraints).
func poetryEdges(name string, v any) []edge {
	switch d := v.(type) {
	case map[string]any:
		e := edge{name: name}
		e.marker, _ = d["markers"].(string)
		e.optional, _ = d["optional"].(bool)
		if xs, ok := d["extras"].([]any); ok {
			for _, x := range xs {
				if s, ok := x.(string); ok {
					e.extras = append(e.extras, s)
				}
			}
		}
		return []edge{e}
	case []any:
		var out []edge
		for _, x := range d {
			out = append(out, poetryEdges(name, x)...)
		}
		return out
	}
	return []edge{{name: name}}
}

func poetryDeps(deps map[string]any) []edge {
	names := make([]string, 0, len(deps))
	for n := range deps {
		if strings.ToLower(n) != "python" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var out []edge
	for _, n := range names {
		out = append(out, poetryEdges(n, deps[n])...)
	}
	return out
}

// parsePoetry reads a poetry.lock. Poetry 2 records each package's
// groups and markers: the default dependencies are the packages of the
// "main" group. An older lock records neither, and its default
// dependencies are found by following pyproject.toml's dependencies.
func (l *Lock) parsePoetry(data, pyproject []byte) error {
	var f poetryFile
	if err := toml.Unmarshal(data, &f); err != nil {
		return decodeErr(l.File, err)
	}
	lines := tableLines(data, "package")
	grouped := false
	indexes := map[string]bool{}
	for i, pp := range f.Package {
		p := &pkg{name: normName(pp.Name), version: pp.Version, line: lineOf(lines, i), groups: pp.Groups, deps: poetryDeps(pp.Dependencies)}
		if pp.Name == "" {
			return l.fail(p.line, "", "a package without a name")
		}
		if len(pp.Groups) > 0 {
			grouped = true
		}
		switch m := pp.Markers.(type) {
		case string:
			p.marker = m
		case map[string]any:
			p.groupMarkers = map[string]string{}
			for g, v := range m {
				if s, ok := v.(string); ok {
					p.groupMarkers[g] = s
				}
			}
		}
		p.optional = map[string][]edge{}
		for x, reqs := range pp.Extras {
			for _, r := range reqs {
				if e, ok := pep508Edge(r); ok {
					e.marker = ""
					p.optional[normName(x)] = append(p.optional[normName(x)], e)
				}
			}
		}
		for _, fe := range pp.Files {
			a := artifact{file: fe.File, sha256: sha256Of(fe.Hash), hashes: fe.Hash != ""}
			if strings.HasSuffix(fe.File, ".whl") {
				p.wheels = append(p.wheels, a)
			} else if p.sdist == nil {
				p.sdist = &a
			}
		}
		if s := pp.Source; s != nil {
			switch s.Type {
			case "legacy":
				if msg := urlProblem(s.URL); msg != "" {
					p.problem = fmt.Sprintf("source url %s: %s", s.URL, msg)
				} else {
					indexes[s.URL] = true
				}
			case "url":
				if msg := urlProblem(s.URL); msg != "" {
					p.problem = fmt.Sprintf("source url %s: %s", s.URL, msg)
				}
				for i := range p.wheels {
					p.wheels[i].url = s.URL
				}
				if p.sdist != nil {
					p.sdist.url = s.URL
				}
			case "git", "hg":
				commit := s.ResolvedReference != "" || s.ResolvedReference2 != ""
				p.problem = vcsProblem(s.Type+"+"+s.URL, commit)
			case "directory", "file":
				p.problem = fmt.Sprintf("its source is the local path %q; only artifacts from an index or a URL can be installed in an image", s.URL)
			}
		}
		l.pkgs = append(l.pkgs, p)
	}
	for u := range indexes {
		l.Indexes = append(l.Indexes, u)
	}
	sort.Strings(l.Indexes)
	if grouped {
		return nil
	}
	if pyproject == nil {
		return l.fail(0, "", "this poetry.lock (written before Poetry 2) does not record which packages are default dependencies; ispec reads them from the pyproject.toml beside it, and there is none")
	}
	var pp pyprojectFile
	if err := toml.Unmarshal(pyproject, &pp); err != nil {
		e := decodeErr(strings.TrimSuffix(l.File, "poetry.lock")+"pyproject.toml", err)
		return e
	}
	l.walk = true
	for _, e := range poetryDeps(pp.Tool.Poetry.Dependencies) {
		if !e.optional { // optional ones are the project's extras
			l.roots = append(l.roots, e)
		}
	}
	for _, r := range pp.Project.Dependencies {
		if e, ok := pep508Edge(r); ok {
			l.roots = append(l.roots, e)
		}
	}
	return nil
}

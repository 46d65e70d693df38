package pylock

import (
	"fmt"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
)

type uvFile struct {
	Version int         `toml:"version"`
	Package []uvPackage `toml:"package"`
}

type uvSource struct {
	Registry  string `toml:"registry"`
	Editable  string `toml:"editable"`
	Virtual   string `toml:"virtual"`
	Path      string `toml:"path"`
	Directory string `toml:"directory"`
	Git       string `toml:"git"`
	URL       string `toml:"url"`
}

type uvArtifact struct {
	URL      string `toml:"url"`
	Path     string `toml:"path"`
	Filename string `toml:"filename"`
	Hash     string `toml:"hash"`
}

type uvDep struct {
	Name    string   `toml:"name"`
	Version string   `toml:"version"`
	Marker  string   `toml:"marker"`
	Extra   []string `toml:"extra"`
}

type uvPackage struct {
	Name                 string             `toml:"name"`
	Version              string             `toml:"version"`
	Source               uvSource           `toml:"source"`
	Sdist                *uvArtifact        `toml:"sdist"`
	Wheels               []uvArtifact       `toml:"wheels"`
	Dependencies         []uvDep            `toml:"dependencies"`
	OptionalDependencies map[string][]uvDep `toml:"optional-dependencies"`
}

func decodeErr(file string, err error) *Error {
	var de *toml.DecodeError
	line := 0
	if e, ok := err.(*toml.DecodeError); ok {
		de = e
		line, _ = de.Position()
	}
	return &Error{File: file, Line: line, Msg: "not valid TOML: " + strings.TrimPrefix(err.Error(), "toml: ")}
}

func uvEdges(deps []uvDep) []edge {
	out := make([]edge, len(deps))
	for i, d := range deps {
		out[i] = edge{name: d.Name, version: d.Version, marker: d.Marker, extras: d.Extra}
	}
	return out
}

// parseUV reads a uv.lock: the project is the package whose source is
// editable or virtual ".", and the default dependencies are its
// dependencies (not its optional ones nor its dev groups), followed
// through the lock.
func (l *Lock) parseUV(data []byte) error {
	var f uvFile
	if err := toml.Unmarshal(data, &f); err != nil {
		return decodeErr(l.File, err)
	}
	if f.Version != 1 {
		return l.fail(0, "", "uv.lock version %d is not supported; expected 1", f.Version)
	}
	lines := tableLines(data, "package")
	l.walk = true
	var projects []*pkg
	for i, up := range f.Package {
		p := &pkg{name: normName(up.Name), version: up.Version, line: lineOf(lines, i), deps: uvEdges(up.Dependencies)}
		if up.Name == "" {
			return l.fail(p.line, "", "a package without a name")
		}
		p.optional = map[string][]edge{}
		for x, deps := range up.OptionalDependencies {
			p.optional[normName(x)] = uvEdges(deps)
		}
		src := up.Source
		switch {
		case src.Editable == "." || src.Virtual == ".":
			p.project = true
			projects = append(projects, p)
		case src.Editable != "" || src.Virtual != "" || src.Path != "" || src.Directory != "":
			p.problem = fmt.Sprintf("its source is the local path %q; only artifacts from an index or a URL can be installed in an image", src.Editable+src.Virtual+src.Path+src.Directory)
		case src.Git != "":
			p.problem = vcsProblem(src.Git, strings.Contains(src.Git, "#"))
		}
		for _, w := range up.Wheels {
			p.wheels = append(p.wheels, uvArt(w))
		}
		if up.Sdist != nil {
			a := uvArt(*up.Sdist)
			p.sdist = &a
		}
		if src.Registry != "" && !strings.Contains(src.Registry, "://") && p.problem == "" {
			p.problem = fmt.Sprintf("its registry %q is a local folder; only artifacts from an index or a URL can be installed in an image", src.Registry)
		}
		l.pkgs = append(l.pkgs, p)
	}
	if len(projects) != 1 {
		return l.fail(0, "", "expected one project (a package whose source is editable = \".\" or virtual = \".\"), found %d; ispec installs the project's default dependencies", len(projects))
	}
	l.roots = projects[0].deps
	return nil
}

func uvArt(a uvArtifact) artifact {
	out := artifact{url: a.URL, file: a.Filename, sha256: sha256Of(a.Hash), hashes: a.Hash != ""}
	if a.Path != "" {
		out.local = a.Path
		if out.file == "" {
			out.file = a.Path[strings.LastIndex(a.Path, "/")+1:]
		}
	}
	if out.file == "" {
		out.file = fileOfURL(a.URL)
	}
	return out
}

// vcsProblem explains why a version control source cannot be installed
// as a lock: pip's --require-hashes cannot check a checkout.
func vcsProblem(src string, commit bool) string {
	if !commit {
		return fmt.Sprintf("its source %s is version control without a commit; pin a commit (and publish the package to an index to install it with hashes)", src)
	}
	return fmt.Sprintf("its source %s is version control; pip cannot check a checkout's hash (--require-hashes), so publish the package to an index and lock it from there", src)
}

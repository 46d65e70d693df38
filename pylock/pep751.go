package pylock

import (
	"fmt"
	"strings"

	toml "github.com/pelletier/go-toml/v2"
)

type pep751File struct {
	LockVersion   string          `toml:"lock-version"`
	DefaultGroups []string        `toml:"default-groups"`
	Packages      []pep751Package `toml:"packages"`
}

type pep751Artifact struct {
	Name   string            `toml:"name"`
	URL    string            `toml:"url"`
	Path   string            `toml:"path"`
	Hashes map[string]string `toml:"hashes"`
}

type pep751Package struct {
	Name    string `toml:"name"`
	Version string `toml:"version"`
	Marker  string `toml:"marker"`
	Vcs     *struct {
		Type     string `toml:"type"`
		URL      string `toml:"url"`
		Path     string `toml:"path"`
		CommitID string `toml:"commit-id"`
	} `toml:"vcs"`
	Directory *struct {
		Path string `toml:"path"`
	} `toml:"directory"`
	Archive *pep751Artifact  `toml:"archive"`
	Sdist   *pep751Artifact  `toml:"sdist"`
	Wheels  []pep751Artifact `toml:"wheels"`
}

// parsePEP751 reads a pylock.toml (PEP 751): each package's marker, with
// no extras and the default groups active, says whether it is installed.
func (l *Lock) parsePEP751(data []byte) error {
	var f pep751File
	if err := toml.Unmarshal(data, &f); err != nil {
		return decodeErr(l.File, err)
	}
	if major, _, _ := strings.Cut(f.LockVersion, "."); major != "1" {
		return l.fail(0, "", "lock-version %q is not supported; expected 1.x", f.LockVersion)
	}
	l.groups = f.DefaultGroups
	lines := tableLines(data, "packages")
	for i, pp := range f.Packages {
		p := &pkg{name: normName(pp.Name), version: pp.Version, line: lineOf(lines, i), marker: pp.Marker}
		if pp.Name == "" {
			return l.fail(p.line, "", "a package without a name")
		}
		switch {
		case pp.Vcs != nil:
			where := pp.Vcs.URL
			if where == "" {
				where = pp.Vcs.Path
			}
			p.problem = vcsProblem(pp.Vcs.Type+"+"+where, pp.Vcs.CommitID != "")
		case pp.Directory != nil:
			p.problem = fmt.Sprintf("its source is the local directory %q; only artifacts from an index or a URL can be installed in an image", pp.Directory.Path)
		case pp.Archive != nil:
			a := pep751Art(*pp.Archive)
			p.sdist = &a
		}
		for _, w := range pp.Wheels {
			p.wheels = append(p.wheels, pep751Art(w))
		}
		if pp.Sdist != nil {
			a := pep751Art(*pp.Sdist)
			p.sdist = &a
		}
		l.pkgs = append(l.pkgs, p)
	}
	return nil
}

func pep751Art(a pep751Artifact) artifact {
	out := artifact{file: a.Name, url: a.URL, hashes: len(a.Hashes) > 0}
	if h := a.Hashes["sha256"]; isHex64(h) {
		out.sha256 = strings.ToLower(h)
	}
	if a.URL == "" && a.Path != "" {
		out.local = a.Path
	}
	if out.file == "" {
		if a.URL != "" {
			out.file = fileOfURL(a.URL)
		} else {
			out.file = a.Path[strings.LastIndex(a.Path, "/")+1:]
		}
	}
	return out
}

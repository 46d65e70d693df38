// Package pylock reads the Python lock files users already keep (uv.lock,
// poetry.lock and PEP 751 pylock.toml) and chooses, for one target
// platform and Python, the exact distributions to install: each with its
// version, artifact and sha256, for pip's --no-deps --require-hashes. It
// does no I/O: callers pass the files' bytes.
package pylock

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"sort"
	"strings"
)

// Format is a lock file format, named by the file name that holds it.
type Format string

// The formats a spec's requirements may name.
const (
	// FormatUV is uv's uv.lock.
	FormatUV Format = "uv.lock"
	// FormatPoetry is Poetry's poetry.lock.
	FormatPoetry Format = "poetry.lock"
	// FormatPEP751 is the standard pylock.toml (pylock.NAME.toml).
	FormatPEP751 Format = "pylock.toml"
)

// FormatOf returns the format of the lock file at p by its name; ok is
// false when p is not a lock file (a pip requirements file).
func FormatOf(p string) (Format, bool) {
	base := path.Base(strings.ReplaceAll(p, `\`, "/"))
	switch {
	case base == "uv.lock":
		return FormatUV, true
	case base == "poetry.lock":
		return FormatPoetry, true
	case base == "pylock.toml" || (strings.HasPrefix(base, "pylock.") && strings.HasSuffix(base, ".toml")):
		return FormatPEP751, true
	}
	return "", false
}

// UsesPyproject reports whether the format's default dependencies are
// read from the pyproject.toml beside the lock (which is then hashed too).
func (f Format) UsesPyproject() bool { return f == FormatUV || f == FormatPoetry }

// ErrInvalid is matched (errors.Is) by every *Error.
var ErrInvalid = errors.New("invalid Python lock file")

// Error is a lock file that cannot be installed as written.
type Error struct {
	// File is the lock file as the caller named it.
	File string
	// Line is the 1-based line, 0 when unknown.
	Line int
	// Package is the distribution concerned, "" for the file as a whole.
	Package string
	// Msg says what is wrong and what was expected.
	Msg string
}

// Error formats the error as file:line: package NAME: message.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	if e.Package != "" {
		fmt.Fprintf(&b, "package %s: ", e.Package)
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Is makes every *Error match ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// Pin is one distribution to install, exactly.
type Pin struct {
	// Name is the distribution name in PEP 503 form.
	Name string `json:"name"`
	// Version is its version.
	Version string `json:"version"`
	// File is the artifact's file name (a wheel, or an sdist when no wheel
	// fits the target).
	File string `json:"file"`
	// URL is where the artifact is downloaded from; empty when the lock
	// records none (poetry.lock), and pip finds File on the index.
	URL string `json:"url,omitempty"`
	// SHA256 is the artifact's sha256, hex.
	SHA256 string `json:"sha256"`
	// Hashes are every sha256 the lock records for this version, when URL
	// is empty (pip may pick any of them from the index); else nil.
	Hashes []string `json:"hashes,omitempty"`
	// Marker is what is left of the package's marker for pip to evaluate
	// in the image (the parts about a Python version the spec does not
	// name); empty when it holds.
	Marker string `json:"marker,omitempty"`
	// Line is the package's line in the lock file.
	Line int `json:"-"`
}

// Lock is a parsed lock file.
type Lock struct {
	// Format is the lock's format.
	Format Format
	// File is the lock file as the caller named it (for errors).
	File string
	// Indexes are the package indexes the lock names for packages whose
	// artifacts it records without URLs (poetry.lock's legacy sources).
	Indexes []string

	pkgs []*pkg
	// roots are the default dependencies, for locks walked as a graph.
	roots []edge
	// walk: select by following roots; else each package's own marker
	// (and, for poetry, its groups) decides.
	walk bool
	// groups are PEP 751's default-groups.
	groups []string
}

// artifact is one file of a package the lock records.
type artifact struct {
	file, url, sha256 string
	local             string // a local path the lock names instead of a URL
	hashes            bool   // some hash is recorded, maybe not sha256
}

type edge struct {
	name, version, marker string
	extras                []string
	optional              bool
}

type pkg struct {
	name, version string
	line          int
	wheels        []artifact
	sdist         *artifact
	problem       string // why it cannot be installed as written, if selected
	deps          []edge
	optional      map[string][]edge
	marker        string
	groups        []string // poetry 2: the groups it belongs to
	groupMarkers  map[string]string
	project       bool // the project itself (uv), never installed
}

// Parse reads a lock file of format f. file names it in errors.
// pyproject is the pyproject.toml beside it (nil when there is none); a
// poetry.lock written before Poetry 2 needs it to tell the default
// dependencies from the others.
func Parse(file string, f Format, data, pyproject []byte) (*Lock, error) {
	l := &Lock{Format: f, File: file}
	var err error
	switch f {
	case FormatUV:
		err = l.parseUV(data)
	case FormatPoetry:
		err = l.parsePoetry(data, pyproject)
	case FormatPEP751:
		err = l.parsePEP751(data)
	default:
		return nil, fmt.Errorf("unknown lock format %q", f)
	}
	if err != nil {
		return nil, err
	}
	return l, nil
}

func (l *Lock) fail(line int, pkg, format string, args ...any) *Error {
	return &Error{File: l.File, Line: line, Package: pkg, Msg: fmt.Sprintf(format, args...)}
}

// Pins returns the distributions to install for target t: the default
// dependencies (no dev groups, no optional extras of the project; not the
// project itself), whose markers hold on t, each with the artifact that
// fits t best, sorted by name. A selected package that cannot be
// installed as written (no hash, a local path, a VCS source) is an *Error
// naming its line.
func (l *Lock) Pins(t Target) ([]Pin, error) {
	sel, err := l.selected(t)
	if err != nil {
		return nil, err
	}
	var out []Pin
	var errs []error
	for _, s := range sel {
		p, err := l.pin(s.pkg, s.marker, t)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, p)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

type selection struct {
	pkg    *pkg
	marker string
}

func (l *Lock) selected(t Target) ([]selection, error) {
	if l.walk {
		return l.walkRoots(t)
	}
	env := t.Env()
	env.Groups = l.groups
	var out []selection
	for _, p := range l.pkgs {
		m := p.marker
		if l.Format == FormatPoetry {
			in := false
			for _, g := range p.groups {
				if g == "main" {
					in = true
				}
			}
			if !in {
				continue
			}
			if gm, ok := p.groupMarkers["main"]; ok {
				m = gm
			}
		}
		holds, residual, err := EvalMarker(m, env)
		if err != nil {
			return nil, l.fail(p.line, p.name, "%v", err)
		}
		if holds {
			out = append(out, selection{p, residual})
		}
	}
	return out, nil
}

// walkRoots follows the dependency graph from the roots, evaluating each
// edge's marker on t; a package reached only through markers pip must
// evaluate gets their disjunction.
func (l *Lock) walkRoots(t Target) ([]selection, error) {
	byName := map[string][]*pkg{}
	for _, p := range l.pkgs {
		byName[p.name] = append(byName[p.name], p)
	}
	type item struct {
		p      *pkg
		extras []string
		cond   string
	}
	conds := map[*pkg]map[string]bool{}
	seen := map[string]bool{}
	var queue []item
	var order []*pkg
	follow := func(from string, fromLine int, e edge, extras []string, cond string) error {
		env := t.Env()
		env.Extras = extras
		holds, residual, err := EvalMarker(e.marker, env)
		if err != nil {
			return l.fail(fromLine, from, "dependency %s: %v", e.name, err)
		}
		if !holds {
			return nil
		}
		c := cond
		switch {
		case c == "":
			c = residual
		case residual != "":
			c = "(" + c + ") and (" + residual + ")"
		}
		cands := byName[normName(e.name)]
		var target *pkg
		for _, p := range cands {
			if e.version == "" || p.version == e.version {
				if target != nil {
					return l.fail(fromLine, from, "dependency %s: the lock has several versions of it and the dependency names none", e.name)
				}
				target = p
			}
		}
		if target == nil {
			return l.fail(fromLine, from, "dependency %s %s is not in the lock", e.name, e.version)
		}
		ex := append([]string{}, e.extras...)
		sort.Strings(ex)
		key := fmt.Sprintf("%p|%s|%s", target, strings.Join(ex, ","), c)
		if seen[key] {
			return nil
		}
		if len(seen) > 100000 {
			return l.fail(0, "", "the dependency graph has too many marker combinations to follow")
		}
		seen[key] = true
		if conds[target] == nil {
			conds[target] = map[string]bool{}
			order = append(order, target)
		}
		conds[target][c] = true
		queue = append(queue, item{target, ex, c})
		return nil
	}
	for _, e := range l.roots {
		if err := follow("", 0, e, nil, ""); err != nil {
			return nil, err
		}
	}
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		for _, e := range it.p.deps {
			if e.optional {
				continue
			}
			if err := follow(it.p.name, it.p.line, e, it.extras, it.cond); err != nil {
				return nil, err
			}
		}
		for _, x := range it.extras {
			for _, e := range it.p.optional[normName(x)] {
				if err := follow(it.p.name, it.p.line, e, it.extras, it.cond); err != nil {
					return nil, err
				}
			}
		}
	}
	var out []selection
	for _, p := range order {
		if p.project {
			continue
		}
		cs := conds[p]
		if cs[""] {
			out = append(out, selection{p, ""})
			continue
		}
		var list []string
		for c := range cs {
			list = append(list, c)
		}
		sort.Strings(list)
		m := list[0]
		if len(list) > 1 {
			m = "(" + strings.Join(list, ") or (") + ")"
		}
		out = append(out, selection{p, m})
	}
	return out, nil
}

// pin chooses p's artifact for t.
func (l *Lock) pin(p *pkg, marker string, t Target) (Pin, error) {
	if p.problem != "" {
		return Pin{}, l.fail(p.line, p.name, "%s", p.problem)
	}
	var best *artifact
	bestScore, needsPython := 0, false
	for i := range p.wheels {
		w := &p.wheels[i]
		score, needs, _ := t.wheelScore(w.file)
		needsPython = needsPython || needs
		if score > bestScore {
			best, bestScore = w, score
		}
	}
	if best == nil {
		best = p.sdist
	}
	if best == nil {
		switch {
		case needsPython && t.Python == "":
			return Pin{}, l.fail(p.line, p.name, "its wheels are for specific Python versions; set python_version in the spec so that ispec can choose one")
		case len(p.wheels) == 0:
			return Pin{}, l.fail(p.line, p.name, "the lock records no wheel or sdist to install")
		}
		return Pin{}, l.fail(p.line, p.name, "none of its wheels fits %s%s and the lock records no sdist", t.Platform, pyText(t))
	}
	if best.local != "" {
		return Pin{}, l.fail(p.line, p.name, "%s is a local path; a lock for an image must name artifacts by URL (lock against an index)", best.local)
	}
	if best.sha256 == "" {
		if best.hashes {
			return Pin{}, l.fail(p.line, p.name, "%s has no sha256 hash (expected sha256)", best.file)
		}
		return Pin{}, l.fail(p.line, p.name, "%s has no hash; pip installs a lock only with --require-hashes", best.file)
	}
	if best.url != "" {
		if msg := urlProblem(best.url); msg != "" {
			return Pin{}, l.fail(p.line, p.name, "%s: %s", best.url, msg)
		}
	}
	pin := Pin{Name: p.name, Version: p.version, File: best.file, URL: best.url, SHA256: best.sha256, Marker: marker, Line: p.line}
	if pin.URL == "" {
		for _, a := range append(append([]artifact{}, p.wheels...), deref(p.sdist)...) {
			if a.sha256 != "" {
				pin.Hashes = append(pin.Hashes, a.sha256)
			}
		}
		sort.Strings(pin.Hashes)
	}
	return pin, nil
}

func deref(a *artifact) []artifact {
	if a == nil {
		return nil
	}
	return []artifact{*a}
}

func pyText(t Target) string {
	if t.Python == "" {
		return ""
	}
	return " with Python " + t.Python
}

var nameSep = regexp.MustCompile(`[-_.]+`)

// normName is a distribution or extra name in PEP 503 form.
func normName(n string) string {
	return strings.ToLower(nameSep.ReplaceAllString(strings.TrimSpace(n), "-"))
}

// sha256Of reads "sha256:HEX"; "" for another algorithm or no hash.
func sha256Of(h string) string {
	alg, hex, ok := strings.Cut(strings.TrimSpace(h), ":")
	if !ok || strings.ToLower(alg) != "sha256" || !isHex64(hex) {
		return ""
	}
	return strings.ToLower(hex)
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

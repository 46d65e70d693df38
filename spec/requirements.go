package spec

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"
)

// Grammars of requirements files.
var (
	// pip's comment: # at the start of a line or after whitespace.
	reqCommentRe = lazyRe(`(^|\s+)#.*$`)
	// --hash values pip accepts.
	reqHashRe = lazyRe(`^(sha256|sha384|sha512):[0-9a-fA-F]+$`)
	// Names pip treats as local archives rather than requirements.
	reqArchiveRe = lazyRe(`(?i)\.(whl|zip|tar|tgz|tbz|txz|tar\.gz|tar\.bz2|tar\.xz|tar\.lz|tlz)$`)
)

// reqOption is how a requirements file may use one of pip's options.
type reqOption struct {
	long, short string
	value       bool
	perReq      bool                  // allowed on a requirement's line (and only there)
	check       func(v string) string // what is wrong with the value, or ""
	include     bool                  // -r and -c: the value is a file to read
}

// reqOptions are the options pip accepts in a requirements file, minus
// those ispec refuses because they reach outside the spec's folder or
// would carry credentials into the hash.
func reqOptions() []reqOption {
	return []reqOption{
		{long: "--requirement", short: "-r", value: true, include: true},
		{long: "--constraint", short: "-c", value: true, include: true},
		{long: "--index-url", short: "-i", value: true, check: remoteURLProblem},
		{long: "--extra-index-url", value: true, check: remoteURLProblem},
		{long: "--find-links", short: "-f", value: true, check: remoteURLProblem},
		{long: "--editable", short: "-e", value: true, check: editableProblem},
		{long: "--no-index"},
		{long: "--prefer-binary"},
		{long: "--require-hashes"},
		{long: "--pre"},
		{long: "--no-binary", value: true},
		{long: "--only-binary", value: true},
		{long: "--trusted-host", value: true},
		{long: "--use-feature", value: true},
		{long: "--hash", value: true, perReq: true, check: func(v string) string {
			if !reqHashRe.MatchString(v) {
				return "expected algorithm:hex with sha256, sha384 or sha512"
			}
			return ""
		}},
		{long: "--config-settings", value: true, perReq: true, check: func(v string) string {
			if k, _, _ := strings.Cut(v, "="); k == "" {
				return "expected KEY=VALUE"
			}
			return ""
		}},
	}
}

// remoteURLProblem says what is wrong with a URL pip reads from a
// requirements file, or "": it must be http(s) without credentials (a
// local path or file: URL reads the build machine's files).
func remoteURLProblem(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" || u.Scheme == "file" || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "expected an http(s) URL; local paths and file: URLs are not allowed"
	}
	if u.User != nil {
		return "must not carry credentials; pass them as pip_secret_mounts or in the configuration"
	}
	return ""
}

// editableProblem allows editable installs from version control only.
func editableProblem(raw string) string {
	scheme, rest, ok := strings.Cut(raw, "://")
	vcs, _, plus := strings.Cut(scheme, "+")
	if !ok || !plus || (vcs != "git" && vcs != "hg" && vcs != "svn" && vcs != "bzr") {
		return "only version control URLs (git+https://...) can be editable; local paths and file: URLs are not allowed"
	}
	if strings.HasSuffix(scheme, "+file") {
		return "file: URLs read the build machine's files and are not allowed"
	}
	host, _, _ := strings.Cut(rest, "/")
	if strings.Contains(host, "@") && !strings.HasPrefix(host, "git@") {
		return "must not carry credentials; pass them as pip_secret_mounts or in the configuration"
	}
	return ""
}

// requirementURLProblem checks the URL of a direct reference
// (name @ URL), or "" when the requirement has none.
func requirementURLProblem(req string) string {
	_, after, ok := strings.Cut(req, "@")
	if !ok {
		return ""
	}
	raw := strings.TrimSpace(after)
	if i := strings.IndexAny(raw, " \t;"); i >= 0 {
		raw = raw[:i]
	}
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	if u.Scheme == "file" || strings.HasSuffix(u.Scheme, "+file") {
		return "file: URLs read the build machine's files and are not allowed"
	}
	if u.User != nil {
		if _, hasPw := u.User.Password(); hasPw || !strings.HasPrefix(u.Scheme, "git+") {
			return "must not carry credentials; pass them as pip_secret_mounts or in the configuration"
		}
	}
	return ""
}

// logicalLine is one line of a requirements file after pip joins
// continuation lines and strips comments.
type logicalLine struct {
	n    int // the first physical line, 1-based
	text string
}

// requirementLines splits a requirements file the way pip does: a line
// ending in a backslash continues on the next (unless it is a comment);
// comments start with # at the line's start or after whitespace; blank
// lines are dropped.
func requirementLines(text string) []logicalLine {
	var out []logicalLine
	var cont []string
	first := 0
	emit := func(n int, s string) {
		s = strings.TrimSpace(reqCommentRe.ReplaceAllString(s, ""))
		if s != "" {
			out = append(out, logicalLine{n, s})
		}
	}
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		l = strings.TrimSuffix(l, "\r")
		comment := reqCommentRe.MatchString(l)
		if !strings.HasSuffix(l, `\`) || comment {
			if comment {
				l = " " + l
			}
			if cont != nil {
				emit(first, strings.Join(append(cont, l), ""))
				cont = nil
			} else {
				emit(i+1, l)
			}
			continue
		}
		if cont == nil {
			first = i + 1
		}
		cont = append(cont, strings.Trim(l, `\`))
	}
	if cont != nil {
		emit(first, strings.Join(cont, ""))
	}
	return out
}

// checkRequirementLine checks one logical line and returns the files it
// includes and what is wrong with it.
func checkRequirementLine(text string) (incs []string, probs []string) {
	// pip: the requirement is every space-separated token before the first
	// one that starts with "-"; the rest are options, split like a shell.
	tokens := strings.Split(text, " ")
	k := 0
	for k < len(tokens) && !strings.HasPrefix(tokens[k], "-") {
		k++
	}
	req := strings.TrimSpace(strings.Join(tokens[:k], " "))
	args, err := splitArgs(strings.Join(tokens[k:], " "))
	if err != nil {
		return nil, []string{err.Error()}
	}
	if req != "" {
		switch {
		case strings.HasPrefix(req, ".") || strings.HasPrefix(req, "/") || strings.HasPrefix(req, "~") || strings.HasPrefix(req, `\`) || (len(req) > 1 && req[1] == ':'):
			probs = append(probs, fmt.Sprintf("%q is a local path; install packages from an index (local files are not read)", req))
		case reqArchiveRe.MatchString(strings.Fields(req)[0]) && !strings.Contains(req, "@"):
			probs = append(probs, fmt.Sprintf("%q names a local archive; install packages from an index (local files are not read)", req))
		default:
			if msg := requirementURLProblem(req); msg != "" {
				probs = append(probs, fmt.Sprintf("%q: %s", req, msg))
			} else if msg := checkPEP508(req); msg != "" {
				probs = append(probs, fmt.Sprintf("%q is not a PEP 508 requirement: %s", req, msg))
			}
		}
	}
	opts := reqOptions()
	for i := 0; i < len(args); i++ {
		a := args[i]
		var o *reqOption
		var val string
		hasVal := false
		for j := range opts {
			c := &opts[j]
			switch {
			case a == c.long || (c.short != "" && a == c.short):
				o = c
			case strings.HasPrefix(a, c.long+"="):
				o, val, hasVal = c, a[len(c.long)+1:], true
			case c.short != "" && len(a) > 2 && strings.HasPrefix(a, c.short) && !strings.HasPrefix(a, "--"):
				o, val, hasVal = c, strings.TrimPrefix(a[2:], "="), true
			}
			if o != nil {
				break
			}
		}
		if o == nil {
			name, _, _ := strings.Cut(a, "=")
			if strings.HasPrefix(a, "-") {
				probs = append(probs, fmt.Sprintf("unknown or unsupported option %s (options must be written in full; see the README for those allowed)", name))
			} else {
				probs = append(probs, fmt.Sprintf("unexpected %q after the options", a))
			}
			continue
		}
		if !o.value && hasVal {
			probs = append(probs, fmt.Sprintf("%s takes no value", o.long))
			continue
		}
		if o.value && !hasVal {
			if i+1 >= len(args) {
				probs = append(probs, fmt.Sprintf("%s needs a value", o.long))
				continue
			}
			i++
			val = args[i]
		}
		switch {
		case req != "" && !o.perReq:
			probs = append(probs, fmt.Sprintf("%s applies to the whole file; put it on a line of its own", o.long))
			continue
		case req == "" && o.perReq:
			probs = append(probs, fmt.Sprintf("%s belongs on a requirement's line", o.long))
			continue
		}
		if o.check != nil {
			if msg := o.check(val); msg != "" {
				probs = append(probs, fmt.Sprintf("%s %s: %s", o.long, val, msg))
			}
		}
		if o.include {
			incs = append(incs, val)
		}
	}
	return incs, probs
}

// requirementsReader reads a requirements file and what it includes.
type requirementsReader struct {
	ctx   context.Context
	fs    *fsys
	root  string // the spec's folder, symlinks resolved
	shown string // the spec's folder as the user named it
	files map[string]Entry
	stack []string
	errs  Errors
	// floating are the requirements without a pinned version and hash.
	floating []Floating
}

func (r *requirementsReader) fail(rel string, line int, format string, args ...any) {
	r.errs = append(r.errs, &FieldError{File: filepath.Join(r.shown, filepath.FromSlash(rel)), Line: line, Field: "requirements", Msg: fmt.Sprintf(format, args...)})
}

// read reads the file rel (slash-separated, relative to the spec's folder)
// and, recursively, the files it includes. It returns a problem with the
// file itself (for the line that named it), or "".
func (r *requirementsReader) read(rel string) string {
	if err := r.ctx.Err(); err != nil {
		return err.Error()
	}
	for i, s := range r.stack {
		if s == rel {
			return "includes itself: " + strings.Join(append(append([]string{}, r.stack[i:]...), rel), " -> ")
		}
	}
	if _, ok := r.files[rel]; ok {
		return ""
	}
	disk, err := r.fs.confine(r.root, rel, true)
	var data []byte
	if err == nil {
		data, err = r.fs.readFile(disk, MaxFileSize)
	}
	if err != nil {
		var esc *escapeError
		switch {
		case errors.As(err, &esc):
			return esc.msg
		case errors.Is(err, fs.ErrNotExist):
			return fmt.Sprintf("%s does not exist (paths are relative to the file that names them)", rel)
		}
		return describe(rel, err)
	}
	sum := sha256.Sum256(data)
	r.files[rel] = Entry{Path: rel, Kind: KindFile, Mode: 0o644, Size: int64(len(data)), Digest: "sha256:" + hex.EncodeToString(sum[:])}
	if !utf8.Valid(data) || strings.ContainsRune(string(data), 0) {
		r.fail(rel, 0, "is not UTF-8 text")
		return ""
	}
	r.stack = append(r.stack, rel)
	defer func() { r.stack = r.stack[:len(r.stack)-1] }()
	for _, l := range requirementLines(string(data)) {
		incs, probs := checkRequirementLine(l.text)
		if req, floats := floatingLine(l.text); floats {
			r.floating = append(r.floating, Floating{File: filepath.Join(r.shown, filepath.FromSlash(rel)), Line: l.n, Field: "requirements", Requirement: req, Why: floatingWhy(req)})
		}
		for _, p := range probs {
			r.fail(rel, l.n, "%s", p)
		}
		for _, inc := range incs {
			if msg := r.includePath(rel, inc); msg != "" {
				r.fail(rel, l.n, "%s", msg)
			}
		}
	}
	return ""
}

// includePath checks and reads a file named by -r or -c in the file from.
// pip resolves it relative to the including file's folder.
func (r *requirementsReader) includePath(from, inc string) string {
	switch {
	case strings.Contains(inc, "://") || strings.HasPrefix(inc, "file:"):
		return fmt.Sprintf("%q: only files next to the requirements file can be included, not URLs", inc)
	case strings.Contains(inc, "$"):
		return fmt.Sprintf("%q: included paths must be plain paths (no ${VAR})", inc)
	case path.IsAbs(inc) || strings.HasPrefix(inc, "~") || strings.HasPrefix(inc, `\`) || (len(inc) > 1 && inc[1] == ':'):
		return fmt.Sprintf("%q must be relative to the including file, not absolute", inc)
	}
	rel := path.Join(path.Dir(from), inc)
	if rel == ".." || strings.HasPrefix(rel, "../") {
		return fmt.Sprintf("%q climbs out of the spec file's folder with ..", inc)
	}
	return r.read(rel)
}

// loadRequirements reads the spec's requirements file and every file it
// includes into img.Requirements: a tree rooted at the spec's folder that
// holds only those files (and their folders), as pip reads them.
func (img *Image) loadRequirements(ctx context.Context, f *fsys, c *collector) error {
	rel := path.Clean(filepath.ToSlash(img.Spec.Requirements))
	r := &requirementsReader{ctx: ctx, fs: f, root: img.Dir, shown: filepath.Dir(img.File), files: map[string]Entry{}}
	if msg := r.read(rel); msg != "" {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		c.add(0, "requirements", "%s", msg)
		return c.err()
	}
	if len(r.errs) > 0 {
		c.errs = append(c.errs, r.errs...)
		return c.err()
	}
	img.Requirements = requirementsTree(img.Dir, r.files)
	img.RequirementsFile = rel
	img.floating = append(img.floating, r.floating...)
	return nil
}

// requirementsTree makes the tree of the requirement files, with an entry
// for every folder above them.
func requirementsTree(root string, files map[string]Entry) *Tree {
	t := &Tree{Root: root}
	dirs := map[string]bool{".": true}
	for p, e := range files {
		t.Entries = append(t.Entries, e)
		for d := path.Dir(p); !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	for d := range dirs {
		t.Entries = append(t.Entries, Entry{Path: d, Kind: KindDir, Mode: 0o755})
	}
	sort.Slice(t.Entries, func(i, j int) bool { return t.Entries[i].Path < t.Entries[j].Path })
	t.Digest = treeDigest(t.Entries)
	return t
}

// requirementsDocument is the requirements member of the hash document:
// the requirements file's digest alone, or with the files it includes.
func (img *Image) requirementsDocument() any {
	var top string
	var incs []any
	base := path.Dir(img.RequirementsFile)
	for _, e := range img.Requirements.Entries {
		switch {
		case e.Kind != KindFile:
		case e.Path == img.RequirementsFile:
			top = e.Digest
		default:
			rel, _ := filepath.Rel(filepath.FromSlash(base), filepath.FromSlash(e.Path))
			incs = append(incs, map[string]any{"path": filepath.ToSlash(rel), "digest": e.Digest})
		}
	}
	if len(incs) == 0 {
		return top
	}
	sort.Slice(incs, func(i, j int) bool {
		return incs[i].(map[string]any)["path"].(string) < incs[j].(map[string]any)["path"].(string)
	})
	return map[string]any{"file": top, "includes": incs}
}

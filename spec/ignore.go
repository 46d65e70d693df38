package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/moby/patternmatcher"
)

// Ignore files read at the root of a copied folder or source_root.
const (
	// IspecIgnoreFile holds .gitignore-style patterns.
	IspecIgnoreFile = ".ispecignore"
	// DockerIgnoreFile holds patterns with Docker's .dockerignore rules.
	DockerIgnoreFile = ".dockerignore"
)

// Ignorer decides which paths of a tree stay out of the image and the hash.
// Paths are slash-separated and relative to the tree's root.
type Ignorer struct {
	prefix  string // path of the walked tree below the ignore files' folder
	git     []gitPattern
	docker  *patternmatcher.PatternMatcher
	secrets []fs.FileInfo // files never walked, whatever their path
	own     []fs.FileInfo // the spec's own files: left out, not reported
}

// WithSecrets returns rules that also leave out the given files (secret
// sources), recognized by identity (device and inode), so that no other
// path, hard link or not, brings them into a tree.
func (ig *Ignorer) WithSecrets(files []fs.FileInfo) *Ignorer {
	out := &Ignorer{}
	if ig != nil {
		*out = *ig
	}
	out.secrets = append(append([]fs.FileInfo{}, out.secrets...), files...)
	return out
}

// withOwn returns rules that also leave out the loading spec's own files
// (the spec file and its lock), recognized by identity like secrets but
// not reported: a spec written inside the folder it copies (the flytekit
// plugin's, or any spec beside its source_root ".") must not hash itself,
// nor change its tag when its lock is written.
func (ig *Ignorer) withOwn(files []fs.FileInfo) *Ignorer {
	out := &Ignorer{}
	if ig != nil {
		*out = *ig
	}
	out.own = append(append([]fs.FileInfo{}, out.own...), files...)
	return out
}

// ownFile reports whether info is one of the spec's own files.
func (ig *Ignorer) ownFile(info fs.FileInfo) bool {
	return info.Mode().IsRegular() && sameAny(info, ig.own)
}

// sameAny reports whether info is the same file as one of files.
func sameAny(info fs.FileInfo, files []fs.FileInfo) bool {
	for _, f := range files {
		if os.SameFile(info, f) {
			return true
		}
	}
	return false
}

// secret reports whether info is one of the secret files.
func (ig *Ignorer) secret(info fs.FileInfo) bool {
	return info.Mode().IsRegular() && sameAny(info, ig.secrets)
}

type gitPattern struct {
	re      *regexp.Regexp
	negate  bool
	dirOnly bool
}

// LoadIgnorer reads .ispecignore (gitignore rules) and .dockerignore
// (Docker's rules) from root, when present. .git is always ignored. An
// ignore file must be a regular file of at most MaxFileSize bytes.
func LoadIgnorer(root string) (*Ignorer, error) {
	return loadIgnorer(&fsys{}, root)
}

// loadIgnorer is LoadIgnorer reading from f.
func loadIgnorer(f *fsys, root string) (*Ignorer, error) {
	ig := &Ignorer{}
	lines, err := readLines(f, root, IspecIgnoreFile)
	if err != nil {
		return nil, err
	}
	for _, l := range lines {
		if p, ok := compileGitPattern(l); ok {
			ig.git = append(ig.git, p)
		}
	}
	lines, err = readLines(f, root, DockerIgnoreFile)
	if err != nil {
		return nil, err
	}
	if len(lines) > 0 {
		var pats []string
		for _, l := range lines {
			l = strings.TrimSpace(l)
			if l == "" || strings.HasPrefix(l, "#") {
				continue
			}
			pats = append(pats, l)
		}
		pm, err := patternmatcher.New(pats)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", DockerIgnoreFile, err)
		}
		ig.docker = pm
	}
	return ig, nil
}

// readLines reads the ignore file name in the folder dir; none when it
// does not exist.
func readLines(f *fsys, dir, name string) ([]string, error) {
	data, err := f.readFile(filepath.Join(dir, name), MaxFileSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, errors.New(describe("ignore file "+name, err))
	}
	if len(data) == 0 {
		return nil, nil
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimSuffix(l, "\r")
	}
	return lines, nil
}

// Ignored reports whether rel (slash-separated) is left out. isDir says
// whether it is a folder. A folder that is ignored is left out whole.
func (ig *Ignorer) Ignored(rel string, isDir bool) bool {
	if ig.prefix != "" {
		rel = ig.prefix + "/" + rel
	}
	if rel == ".git" || strings.HasPrefix(rel, ".git/") || strings.HasSuffix(rel, "/.git") || strings.Contains(rel, "/.git/") || strings.HasPrefix(rel, ".git/") {
		return true
	}
	ignored := false
	for _, p := range ig.git {
		if p.dirOnly && !isDir {
			continue
		}
		if p.re.MatchString(rel) {
			ignored = !p.negate
		}
	}
	if ignored {
		return true
	}
	if ig.docker != nil {
		m, err := ig.docker.MatchesOrParentMatches(rel)
		if err == nil && m {
			// A folder with re-included entries below it must still be walked.
			return !isDir || !ig.docker.Exclusions()
		}
	}
	return false
}

// under returns the rules for walking the sub-folder rel (slash-separated,
// relative to the folder the ignore files were read from).
func (ig *Ignorer) under(rel string) *Ignorer {
	sub := *ig
	if rel = path.Clean(rel); rel != "." {
		sub.prefix = rel
	}
	return &sub
}

// compileGitPattern turns one .gitignore line into a pattern.
func compileGitPattern(line string) (gitPattern, bool) {
	line = strings.TrimRight(line, " \t\r")
	if line == "" || strings.HasPrefix(line, "#") {
		return gitPattern{}, false
	}
	var p gitPattern
	if strings.HasPrefix(line, "!") {
		p.negate = true
		line = line[1:]
	} else if strings.HasPrefix(line, `\`) {
		line = line[1:]
	}
	if strings.HasSuffix(line, "/") {
		p.dirOnly = true
		line = strings.TrimRight(line, "/")
	}
	anchored := strings.Contains(line, "/")
	line = strings.TrimPrefix(line, "/")
	if line == "" {
		return gitPattern{}, false
	}
	var re strings.Builder
	re.WriteString("^")
	if !anchored {
		re.WriteString("(.*/)?")
	}
	for i := 0; i < len(line); i++ {
		ch := line[i]
		switch {
		case strings.HasPrefix(line[i:], "**/"):
			re.WriteString("(.*/)?")
			i += 2
		case strings.HasPrefix(line[i:], "/**") && i+3 == len(line):
			re.WriteString("/.*")
			i += 2
		case strings.HasPrefix(line[i:], "**"):
			re.WriteString(".*")
			i++
		case ch == '*':
			re.WriteString("[^/]*")
		case ch == '?':
			re.WriteString("[^/]")
		case ch == '[':
			end := strings.IndexByte(line[i+1:], ']')
			if end < 0 {
				re.WriteString(`\[`)
				continue
			}
			class := line[i+1 : i+1+end]
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			re.WriteString("[" + strings.ReplaceAll(class, `\`, `\\`) + "]")
			i += end + 1
		case ch == '\\' && i+1 < len(line):
			i++
			re.WriteString(regexp.QuoteMeta(string(line[i])))
		default:
			re.WriteString(regexp.QuoteMeta(string(ch)))
		}
	}
	re.WriteString("$")
	rx, err := regexp.Compile(re.String())
	if err != nil {
		return gitPattern{}, false
	}
	p.re = rx
	return p, true
}

package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// expandSpecArgs turns the command's arguments into spec files: an
// argument with a glob character (*, ?, [) is a pattern ispec expands
// itself, for CI systems that pass patterns quoted; `**` as a whole path
// element matches any number of folders. A pattern that matches nothing
// is a usage error naming it. Other arguments are files, kept as given
// (a missing one is reported when it is loaded). A file given twice, by
// name or by two patterns, is built once, at its first place.
func expandSpecArgs(args []string) ([]string, error) {
	var out []string
	seen := map[string]bool{}
	add := func(p string) {
		if k := filepath.Clean(p); !seen[k] {
			seen[k] = true
			out = append(out, p)
		}
	}
	var errs []error
	for _, a := range args {
		if !isPattern(a) {
			add(a)
			continue
		}
		matches, err := expandGlob(a)
		switch {
		case err != nil:
			errs = append(errs, err)
		case len(matches) == 0:
			errs = append(errs, fmt.Errorf("pattern %q matches no spec file", a))
		}
		for _, m := range matches {
			add(m)
		}
	}
	if len(errs) > 0 {
		return nil, usageError{errors.Join(errs...)}
	}
	return out, nil
}

// isPattern reports whether a holds a glob character.
func isPattern(a string) bool { return strings.ContainsAny(a, "*?[") }

// expandGlob returns the regular files pattern matches, sorted. Elements
// are matched with filepath.Match; `**` matches zero or more folders. As in
// shells, a wildcard does not match a name that starts with a dot unless
// the pattern's element does, so `**` does not descend into .git; nor
// does it follow symlinks to folders.
func expandGlob(pattern string) ([]string, error) {
	elems := strings.Split(filepath.ToSlash(pattern), "/")
	for _, e := range elems {
		if _, err := filepath.Match(e, ""); err != nil {
			return nil, fmt.Errorf("pattern %q: %w", pattern, err)
		}
		if strings.Contains(e, "**") && e != "**" {
			return nil, fmt.Errorf("pattern %q: ** must be a whole path element (dir/**/*.yaml)", pattern)
		}
	}
	// The leading elements without wildcards name the folder to start in.
	root, rest := "", elems
	for len(rest) > 1 && !isPattern(rest[0]) {
		if root == "" && rest[0] == "" {
			root = "/"
		} else {
			root = filepath.Join(root, rest[0])
		}
		rest = rest[1:]
	}
	if root == "" {
		root = "."
	}
	var out []string
	walkGlob(root, rest, func(p string) { out = append(out, p) })
	sort.Strings(out)
	return out, nil
}

// walkGlob calls match for each regular file under dir whose path below
// dir matches elems.
func walkGlob(dir string, elems []string, match func(string)) {
	if len(elems) == 0 {
		return
	}
	e, rest := elems[0], elems[1:]
	if e == "**" {
		// Zero folders, then one more folder and ** again. A trailing **
		// matches every file below.
		walkGlob(dir, rest, match)
		for _, d := range readDir(dir) {
			if strings.HasPrefix(d.Name(), ".") {
				continue
			}
			// ** descends into folders, not symlinks to folders (no loops).
			p := join(dir, d.Name())
			if d.IsDir() {
				walkGlob(p, elems, match)
			} else if fi, err := os.Stat(p); err == nil && len(rest) == 0 && fi.Mode().IsRegular() {
				match(p)
			}
		}
		return
	}
	if !isPattern(e) {
		p := join(dir, e)
		if len(rest) == 0 {
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
				match(p)
			}
			return
		}
		walkGlob(p, rest, match)
		return
	}
	for _, d := range readDir(dir) {
		n := d.Name()
		if strings.HasPrefix(n, ".") && !strings.HasPrefix(e, ".") {
			continue
		}
		if ok, _ := filepath.Match(e, n); !ok {
			continue
		}
		p := join(dir, n)
		fi, err := os.Stat(p)
		if err != nil {
			continue
		}
		switch {
		case len(rest) == 0 && fi.Mode().IsRegular():
			match(p)
		case len(rest) > 0 && fi.IsDir():
			walkGlob(p, rest, match)
		}
	}
}

// readDir lists dir; a folder that cannot be read matches nothing.
func readDir(dir string) []fs.DirEntry {
	ents, _ := os.ReadDir(dir)
	return ents
}

// join is filepath.Join that keeps paths relative to "." short.
func join(dir, name string) string {
	if dir == "." {
		return name
	}
	return filepath.Join(dir, name)
}

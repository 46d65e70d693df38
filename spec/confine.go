package spec

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"path/filepath"
	"strings"

	"github.com/ispec-dev/ispec/internal/pathutil"
)

// escapeError is a path that leads outside the folder it must stay in.
type escapeError struct{ msg string }

func (e *escapeError) Error() string { return e.msg }

// confine resolves rel, a slash-separated path relative to root (a folder
// whose own symlinks are resolved), one component at a time, in f. It refuses
// absolute paths, .. escapes and any symlink on the way, the last
// component included, that resolves outside root (an *escapeError). It
// returns the path on disk with every symlink resolved, except the last
// component's when followLast is false (a tree records a symlink at its
// root as a symlink). Other errors are the file system's (fs.ErrNotExist
// for a missing component).
func (f *fsys) confine(root, rel string, followLast bool) (string, error) {
	if msg := checkRelPath(rel); msg != "" {
		return "", &escapeError{fmt.Sprintf("%q %s", rel, msg)}
	}
	clean := path.Clean(rel)
	if clean == "." {
		return root, nil
	}
	parts := strings.Split(clean, "/")
	cur := root
	for i, part := range parts {
		next := filepath.Join(cur, part)
		info, err := f.lstat(next)
		if err != nil {
			return "", err
		}
		if info.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		link := path.Join(parts[:i+1]...)
		real, err := f.evalSymlinks(next)
		var out *outsideError
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return "", fmt.Errorf("%s is a symlink to nothing: %w", link, fs.ErrNotExist)
		case errors.As(err, &out):
			// Under a root: the link leads out of it, so out of root too.
		case err != nil:
			return "", err
		}
		if out != nil || !pathutil.Within(root, real) {
			target, _ := f.readlink(next)
			return "", &escapeError{fmt.Sprintf("%q leads outside the spec file's folder through the symlink %s -> %s; files are read only from inside that folder", rel, link, target)}
		}
		if i == len(parts)-1 && !followLast {
			cur = next
		} else {
			cur = real
		}
	}
	return cur, nil
}

// realDir returns a folder's path with its symlinks resolved.
func realDir(dir string) string {
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		return real
	}
	return dir
}

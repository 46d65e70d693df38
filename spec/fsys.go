package spec

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
)

// maxLinks is the most symlinks followed to resolve one path (Linux's
// limit).
const maxLinks = 40

// fsys is where a spec's files are read from: the host's file system
// (the CLI), or one folder through an os.Root (a server's upload), where
// no absolute path, .. or symlink leads out of the folder. Paths are the
// files' paths on disk either way, so images name their files as the
// builder reads them.
type fsys struct {
	root *os.Root // nil: the host
	top  string   // the root's folder, absolute, symlinks resolved
}

// newFsys returns the file system of Options.Root.
func newFsys(root *os.Root) (*fsys, error) {
	if root == nil {
		return &fsys{}, nil
	}
	abs, err := filepath.Abs(root.Name())
	if err != nil {
		return nil, fmt.Errorf("resolving the root folder: %w", err)
	}
	return &fsys{root: root, top: realDir(abs)}, nil
}

// outsideError is a path that leads out of the root.
type outsideError struct {
	name string // the path, relative to the root
	link string // the symlink that leads out, relative to the root; "" for ..
	to   string // its target
}

func (e *outsideError) Error() string {
	if e.link == "" {
		return fmt.Sprintf("%s climbs out of the upload with ..", e.name)
	}
	return fmt.Sprintf("%s leads outside the upload through the symlink %s -> %s", e.name, e.link, e.to)
}

// name returns the name disk path p is opened by: p itself on the host,
// else its slash-separated path relative to the root (an *outsideError
// when p is not below the root's folder).
func (f *fsys) name(p string) (string, error) {
	if f.root == nil {
		return p, nil
	}
	rel, err := filepath.Rel(f.top, p)
	if err != nil {
		return "", &outsideError{name: filepath.Base(p)}
	}
	if !filepath.IsLocal(rel) && rel != "." {
		return "", &outsideError{name: filepath.ToSlash(rel)}
	}
	return filepath.ToSlash(rel), nil
}

// disk returns the disk path of a name relative to the root.
func (f *fsys) disk(name string) string {
	return filepath.Join(f.top, filepath.FromSlash(name))
}

// diskOf returns the path on disk of a spec file as errors show it
// (Image.File): relative to the root under one, else as given.
func (f *fsys) diskOf(file string) string {
	if f.root != nil {
		return f.disk(file)
	}
	if abs, err := filepath.Abs(file); err == nil {
		return abs
	}
	return file
}

// lstat is os.Lstat.
func (f *fsys) lstat(p string) (fs.FileInfo, error) {
	if f.root == nil {
		return os.Lstat(p)
	}
	n, err := f.name(p)
	if err != nil {
		return nil, err
	}
	return f.root.Lstat(n)
}

// readlink is os.Readlink.
func (f *fsys) readlink(p string) (string, error) {
	if f.root == nil {
		return os.Readlink(p)
	}
	n, err := f.name(p)
	if err != nil {
		return "", err
	}
	return f.root.Readlink(n)
}

// evalSymlinks is filepath.EvalSymlinks; under a root, a symlink that is
// absolute or climbs out is an *outsideError, and nothing outside is
// looked at.
func (f *fsys) evalSymlinks(p string) (string, error) {
	if f.root == nil {
		return filepath.EvalSymlinks(p)
	}
	n, err := f.name(p)
	if err != nil {
		return "", err
	}
	real, err := resolveIn(f.root, n)
	if err != nil {
		return "", err
	}
	return f.disk(real), nil
}

// stat is os.Stat.
func (f *fsys) stat(p string) (fs.FileInfo, error) {
	real, err := f.evalSymlinks(p)
	if err != nil {
		return nil, err
	}
	return f.lstat(real)
}

// resolveIn resolves every symlink of name (slash-separated, relative to
// root) as the kernel would, looking only inside root: an absolute
// target, or a .. above the root, is an *outsideError.
func resolveIn(root *os.Root, name string) (string, error) {
	todo := strings.Split(name, "/")
	var done []string
	links := 0
	for len(todo) > 0 {
		part := todo[0]
		todo = todo[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			if len(done) == 0 {
				return "", &outsideError{name: name}
			}
			done = done[:len(done)-1]
			continue
		}
		cur := path.Join(append(done, part)...)
		info, err := root.Lstat(cur)
		if err != nil {
			return "", err
		}
		if info.Mode()&fs.ModeSymlink == 0 {
			done = append(done, part)
			continue
		}
		if links++; links > maxLinks {
			return "", &fs.PathError{Op: "resolve", Path: name, Err: syscall.ELOOP}
		}
		target, err := root.Readlink(cur)
		if err != nil {
			return "", err
		}
		if path.IsAbs(target) {
			return "", &outsideError{name: name, link: cur, to: target}
		}
		rest := append(strings.Split(target, "/"), todo...)
		// A target that climbs above the root names the link.
		if depthAfter(done, target) < 0 {
			return "", &outsideError{name: name, link: cur, to: target}
		}
		todo = rest
	}
	if len(done) == 0 {
		return ".", nil
	}
	return path.Join(done...), nil
}

// depthAfter is how deep below the root a symlink target leads from the
// folder done; negative when it climbs above the root.
func depthAfter(done []string, target string) int {
	d := len(done)
	for _, part := range strings.Split(target, "/") {
		switch part {
		case "", ".":
		case "..":
			if d--; d < 0 {
				return d
			}
		default:
			d++
		}
	}
	return d
}

// notRegularError is a file that must be a regular file and is not.
type notRegularError struct {
	kind string
}

func (e *notRegularError) Error() string { return "is not a regular file (it is " + e.kind + ")" }

// kindOf describes a file type for an error.
func kindOf(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a folder"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSymlink != 0:
		return "a symlink"
	}
	return "not a file"
}

// open opens a regular file for reading, following symlinks (under a
// root, only those that stay inside). It never blocks: a named pipe is
// opened without waiting for a writer and refused, as is a device or a
// folder (a *notRegularError).
func (f *fsys) open(p string) (*os.File, fs.FileInfo, error) {
	const flags = os.O_RDONLY | syscall.O_NONBLOCK | syscall.O_NOCTTY
	var file *os.File
	var err error
	if f.root == nil {
		file, err = os.OpenFile(p, flags, 0)
	} else {
		var n string
		if n, err = f.name(p); err == nil {
			if n, err = resolveIn(f.root, n); err == nil {
				file, err = f.root.OpenFile(n, flags, 0)
			}
		}
	}
	if err != nil {
		return nil, nil, err
	}
	info, err := file.Stat()
	if err == nil && !info.Mode().IsRegular() {
		err = &notRegularError{kind: kindOf(info.Mode())}
	}
	if err != nil {
		file.Close()
		return nil, nil, err
	}
	return file, info, nil
}

// tooLargeError is a file larger than the limit for its kind.
type tooLargeError struct{ limit int64 }

func (e *tooLargeError) Error() string {
	return fmt.Sprintf("is larger than the %d byte limit", e.limit)
}

// readFile reads a regular file of at most limit bytes (see open); a
// larger one is a *tooLargeError, found without reading it whole.
func (f *fsys) readFile(p string, limit int64) ([]byte, error) {
	file, info, err := f.open(p)
	if err != nil {
		return nil, err
	}
	defer file.Close()
	if info.Size() > limit {
		return nil, &tooLargeError{limit}
	}
	data, err := io.ReadAll(io.LimitReader(file, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, &tooLargeError{limit}
	}
	return data, nil
}

// walkDir is filepath.WalkDir over a folder on disk (entries in lexical
// order, fs.SkipDir and fs.SkipAll honoured); fn gets disk paths.
// Symlinks are reported, not followed. Under a root every folder is
// opened through it, whatever bytes its name holds.
func (f *fsys) walkDir(p string, fn fs.WalkDirFunc) error {
	if f.root == nil {
		return filepath.WalkDir(p, fn)
	}
	n, err := f.name(p)
	if err != nil {
		return err
	}
	info, err := f.root.Lstat(n)
	if err != nil {
		err = fn(p, nil, err)
	} else {
		err = f.walk(n, fs.FileInfoToDirEntry(info), fn)
	}
	if err == fs.SkipDir || err == fs.SkipAll {
		return nil
	}
	return err
}

// walk walks the entry d named name (relative to the root).
func (f *fsys) walk(name string, d fs.DirEntry, fn fs.WalkDirFunc) error {
	p := f.disk(name)
	if err := fn(p, d, nil); err != nil || !d.IsDir() {
		if err == fs.SkipDir && d.IsDir() {
			err = nil
		}
		return err
	}
	dir, err := f.root.Open(name)
	var entries []fs.DirEntry
	if err == nil {
		entries, err = dir.ReadDir(-1)
		dir.Close()
	}
	if err != nil {
		// As filepath.WalkDir: a second call reports the error.
		if err = fn(p, d, err); err != nil {
			if err == fs.SkipDir {
				err = nil
			}
			return err
		}
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	for _, e := range entries {
		if err := f.walk(path.Join(name, e.Name()), e, fn); err != nil {
			if err == fs.SkipDir {
				break
			}
			return err
		}
	}
	return nil
}

// describe turns a file system error about the file shown as shown into
// a message that names it and never carries the file's bytes.
func describe(shown string, err error) string {
	var out *outsideError
	var nr *notRegularError
	var tl *tooLargeError
	switch {
	case errors.As(err, &out):
		return out.Error()
	case errors.As(err, &nr), errors.As(err, &tl):
		return shown + " " + err.Error()
	case errors.Is(err, fs.ErrNotExist):
		return shown + " does not exist"
	case errors.Is(err, fs.ErrPermission):
		return shown + " cannot be read: permission denied"
	case errors.Is(err, syscall.ELOOP):
		return shown + ": too many levels of symlinks"
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		// Name the file as shown, not by its path on disk.
		return fmt.Sprintf("%s: %s: %v", shown, pe.Op, pe.Err)
	}
	return err.Error()
}

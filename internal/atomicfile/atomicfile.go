// Package atomicfile writes a file so that a reader sees the old file or
// the whole new one, never part of it: the bytes go to a temporary file in
// the same folder, which is synced, given its mode and renamed into place.
package atomicfile

import (
	"fmt"
	"os"
	"path/filepath"
)

// File is a file being written; it replaces the file at its path only on
// Commit. The zero value is not usable; call Create.
type File struct {
	path   string
	f      *os.File
	done   bool
	closed bool
	err    error // Close's error
}

// Create starts writing the file at path: a temporary file beside it.
func Create(path string) (*File, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, err
	}
	return &File{path: path, f: f}, nil
}

// Write implements io.Writer.
func (f *File) Write(p []byte) (int, error) { return f.f.Write(p) }

// Close syncs and closes the temporary file without putting it in place
// (see Commit). It returns the same error each time it is called.
func (f *File) Close() error {
	if f.closed {
		return f.err
	}
	f.closed = true
	f.err = f.f.Sync()
	if err := f.f.Close(); f.err == nil {
		f.err = err
	}
	return f.err
}

// Commit closes the temporary file (Close), sets its permission bits to
// perm and renames it to the path. On failure the temporary file is
// removed and the path is left as it was.
func (f *File) Commit(perm os.FileMode) error {
	if f.done {
		return fmt.Errorf("%s: committed or discarded already", f.path)
	}
	f.done = true
	err := f.Close()
	if err == nil {
		err = os.Chmod(f.f.Name(), perm)
	}
	if err == nil {
		err = os.Rename(f.f.Name(), f.path)
	}
	if err != nil {
		os.Remove(f.f.Name())
	}
	return err
}

// Discard removes the temporary file; the path is left as it was. It does
// nothing after Commit.
func (f *File) Discard() {
	if f.done {
		return
	}
	f.done = true
	f.Close()
	os.Remove(f.f.Name())
}

// WriteFile writes data to path atomically with the permission bits perm.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	f, err := Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Discard()
		return err
	}
	return f.Commit(perm)
}

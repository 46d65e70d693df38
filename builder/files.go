package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	gofs "io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/tonistiigi/fsutil"
	"github.com/tonistiigi/fsutil/types"

	"github.com/ispec-dev/ispec/spec"
)

// ErrChanged is returned while sending files when a file's content no
// longer matches the digest it was hashed with: the image would not be what
// its tag says.
var ErrChanged = errors.New("file changed after it was hashed")

// LocalMounts returns the files the graph of img reads through the BuildKit
// session, by local source name: exactly the entries of img's trees, with
// the modes that were hashed. A file whose content changed since it was
// hashed fails the build with ErrChanged. A Python lock is not sent:
// the graph holds the pins chosen from it.
func LocalMounts(img *spec.Image) map[string]fsutil.FS {
	m := map[string]fsutil.FS{}
	if img.Requirements != nil && img.PythonLock == nil {
		m[localRequirements] = newTreeFS(img.Requirements, singleFileName)
	}
	for i, t := range img.Copies {
		m[localCopyName(i)] = newTreeFS(t, singleFileName)
	}
	if img.Source != nil {
		m[localSource] = newTreeFS(img.Source, singleFileName)
	}
	for name, t := range layerTreesByLocal(img) {
		m[name] = newTreeFS(t, singleFileName)
	}
	return m
}

// treeFS serves the entries of a spec.Tree as an fsutil.FS. A tree whose
// root is a single file serves it under one fixed name.
type treeFS struct {
	tree    *spec.Tree
	entries []spec.Entry // in walk order, without the root folder
	single  string       // the served name of a single-file tree
}

func newTreeFS(t *spec.Tree, singleName string) *treeFS {
	fs := &treeFS{tree: t}
	if len(t.Entries) == 1 && t.Entries[0].Path == "." {
		fs.single = singleName
		e := t.Entries[0]
		e.Path = singleName
		fs.entries = []spec.Entry{e}
		return fs
	}
	for _, e := range t.Entries {
		if e.Path != "." {
			fs.entries = append(fs.entries, e)
		}
	}
	// A walk visits a folder's children right after the folder, comparing
	// names component by component ("a/b" before "a-b").
	sort.Slice(fs.entries, func(i, j int) bool {
		return lessPath(fs.entries[i].Path, fs.entries[j].Path)
	})
	return fs
}

func lessPath(a, b string) bool {
	pa, pb := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		if pa[i] != pb[i] {
			return pa[i] < pb[i]
		}
	}
	return len(pa) < len(pb)
}

// diskPath is the path on disk of a served path.
func (f *treeFS) diskPath(p string) string {
	if f.single != "" {
		return f.tree.Root
	}
	return filepath.Join(f.tree.Root, filepath.FromSlash(p))
}

// Walk implements fsutil.FS.
func (f *treeFS) Walk(ctx context.Context, target string, fn gofs.WalkDirFunc) error {
	target = strings.Trim(filepath.ToSlash(filepath.Clean(target)), "/")
	if target == "." {
		target = ""
	}
	for i := range f.entries {
		e := &f.entries[i]
		if target != "" && e.Path != target && !strings.HasPrefix(e.Path, target+"/") {
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		st, err := f.stat(e)
		if err != nil {
			return err
		}
		if err := fn(filepath.FromSlash(e.Path), &fsutil.DirEntryInfo{Stat: st}, nil); err != nil {
			if errors.Is(err, filepath.SkipDir) {
				continue
			}
			return err
		}
	}
	return nil
}

// stat describes an entry as hashed: its mode, size and symlink target
// from the tree, owned by root. The modification time is the file's own
// (it decides whether BuildKit sends the file again; the exporter rewrites
// it to the epoch).
func (f *treeFS) stat(e *spec.Entry) (*types.Stat, error) {
	mode := spec.FileMode(e.Mode)
	switch e.Kind {
	case spec.KindDir:
		mode |= os.ModeDir
	case spec.KindSymlink:
		mode |= os.ModeSymlink
	}
	st := &types.Stat{Path: filepath.FromSlash(e.Path), Mode: uint32(mode), Size: e.Size, Linkname: e.Target}
	info, err := os.Lstat(f.diskPath(e.Path))
	if err != nil {
		return nil, fmt.Errorf("sending %s: %w", e.Path, err)
	}
	st.ModTime = info.ModTime().UnixNano()
	if e.Kind == spec.KindDir {
		st.Size = 0
	}
	return st, nil
}

// Open implements fsutil.FS. The reader fails with ErrChanged when the
// content differs from the hashed digest.
func (f *treeFS) Open(p string) (io.ReadCloser, error) {
	p = filepath.ToSlash(filepath.Clean(p))
	i := sort.Search(len(f.entries), func(i int) bool { return !lessPath(f.entries[i].Path, p) })
	if i == len(f.entries) || f.entries[i].Path != p || f.entries[i].Kind != spec.KindFile {
		return nil, fmt.Errorf("opening %s: %w", p, gofs.ErrNotExist)
	}
	e := f.entries[i]
	r, err := os.Open(f.diskPath(p))
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", p, err)
	}
	return &verifyingReader{f: r, h: sha256.New(), want: e.Digest, size: e.Size, path: f.diskPath(p)}, nil
}

// verifyingReader checks a file's size and digest as it is read.
type verifyingReader struct {
	f    *os.File
	h    hash.Hash
	n    int64
	want string
	size int64
	path string
}

func (r *verifyingReader) Read(b []byte) (int, error) {
	n, err := r.f.Read(b)
	r.h.Write(b[:n])
	r.n += int64(n)
	if r.n > r.size {
		return n, fmt.Errorf("%s: %w (it grew)", r.path, ErrChanged)
	}
	if err == io.EOF {
		if got := "sha256:" + hex.EncodeToString(r.h.Sum(nil)); r.n != r.size || got != r.want {
			return n, fmt.Errorf("%s: %w", r.path, ErrChanged)
		}
	}
	return n, err
}

func (r *verifyingReader) Close() error { return r.f.Close() }

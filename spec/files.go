package spec

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
)

// Entry kinds in a Tree.
const (
	KindFile    = "file"
	KindDir     = "dir"
	KindSymlink = "symlink"
)

// Entry is one file, folder or symlink of a Tree.
type Entry struct {
	// Path is slash-separated and relative to the tree's root; "." is the root.
	Path string `json:"path"`
	// Kind is KindFile, KindDir or KindSymlink.
	Kind string `json:"kind"`
	// Mode holds the 12 Unix permission bits (0o7777: rwx, setuid, setgid,
	// sticky).
	Mode uint32 `json:"mode"`
	// Size is a file's size in bytes.
	Size int64 `json:"size,omitempty"`
	// Digest is a file's content digest, "sha256:<hex>".
	Digest string `json:"digest,omitempty"`
	// Target is a symlink's target, as stored.
	Target string `json:"target,omitempty"`
}

// Tree is the content of a file or folder that a spec references, after
// ignore rules.
type Tree struct {
	// Root is the tree's path on disk.
	Root string `json:"-"`
	// Entries are sorted by Path.
	Entries []Entry `json:"entries"`
	// Digest is the tree digest, "sha256:<hex>" (see docs/identity.md).
	Digest string `json:"digest"`
	// Excluded are the paths left out because they are secret files (see
	// Ignorer.WithSecrets), in walk order.
	Excluded []string `json:"-"`
}

// Size is the total size of the tree's files in bytes.
func (t *Tree) Size() int64 {
	var n int64
	for _, e := range t.Entries {
		n += e.Size
	}
	return n
}

// line is the entry's line in the tree digest's input.
func (e *Entry) line() string {
	content := "-"
	switch e.Kind {
	case KindFile:
		content = strings.TrimPrefix(e.Digest, "sha256:")
	case KindSymlink:
		content = string(canonical(e.Target))
	}
	return fmt.Sprintf("%s %04o %s %s\n", e.Kind, e.Mode, canonical(e.Path), content)
}

// FileMode is the fs.FileMode of the 12 Unix permission bits of an Entry
// (the inverse of the bits HashTree records).
func FileMode(bits uint32) fs.FileMode {
	m := fs.FileMode(bits & 0o777)
	if bits&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if bits&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if bits&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// PermBits returns the 12 permission bits (rwx for all, setuid, setgid,
// sticky) as Unix writes them.
func PermBits(m fs.FileMode) uint32 {
	p := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		p |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		p |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		p |= 0o1000
	}
	return p
}

// HashTree walks root (a file or folder), leaves out what ig ignores (nil:
// nothing but .git), the secret files it names and the spec's own files,
// and hashes every file's content on all cores. Files are
// streamed, never read whole. Symlinks are recorded, not followed.
func HashTree(ctx context.Context, root string, ig *Ignorer) (*Tree, error) {
	return hashTree(ctx, &fsys{}, root, ig, nil)
}

// hashTree is HashTree reading from f, with the digests of files whose
// content is not on disk (Options.Digests), by path.
func hashTree(ctx context.Context, f *fsys, root string, ig *Ignorer, known map[string]string) (*Tree, error) {
	if ig == nil {
		ig = &Ignorer{}
	}
	info, err := f.lstat(root)
	if err != nil {
		return nil, err
	}
	t := &Tree{Root: root}
	if !info.IsDir() {
		e, err := entryFor(f, ".", root, info)
		if err != nil {
			return nil, err
		}
		t.Entries = []Entry{e}
	} else {
		err = f.walkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			rel, _ := filepath.Rel(root, p)
			rel = filepath.ToSlash(rel)
			if rel != "." && ig.Ignored(rel, d.IsDir()) {
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			}
			var info fs.FileInfo
			if f.root == nil {
				info, err = d.Info()
			} else {
				info, err = f.lstat(p)
			}
			if err != nil {
				return err
			}
			if ig.ownFile(info) {
				return nil
			}
			if ig.secret(info) {
				t.Excluded = append(t.Excluded, rel)
				return nil
			}
			e, err := entryFor(f, rel, p, info)
			if err != nil {
				return err
			}
			t.Entries = append(t.Entries, e)
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Slice(t.Entries, func(i, j int) bool { return t.Entries[i].Path < t.Entries[j].Path })
	if err := hashFiles(ctx, f, root, info.IsDir(), t.Entries, known); err != nil {
		return nil, err
	}
	t.Digest = treeDigest(t.Entries)
	return t, nil
}

// treeDigest is the digest of entries sorted by path (docs/identity.md).
func treeDigest(entries []Entry) string {
	h := sha256.New()
	for i := range entries {
		io.WriteString(h, entries[i].line())
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

func entryFor(f *fsys, rel, p string, info fs.FileInfo) (Entry, error) {
	e := Entry{Path: rel, Mode: PermBits(info.Mode())}
	switch {
	case info.Mode().IsRegular():
		e.Kind, e.Size = KindFile, info.Size()
	case info.IsDir():
		e.Kind = KindDir
	case info.Mode()&fs.ModeSymlink != 0:
		target, err := f.readlink(p)
		if err != nil {
			return e, err
		}
		e.Kind, e.Target = KindSymlink, target
		e.Mode = 0o777
	default:
		return e, fmt.Errorf("%s: not a regular file, folder or symlink (it is %s)", p, kindOf(info.Mode()))
	}
	return e, nil
}

// hashFiles fills in the digest of each file entry, with one worker per
// core; a file whose digest is known is not read.
func hashFiles(ctx context.Context, f *fsys, root string, isDir bool, entries []Entry, known map[string]string) error {
	work := make(chan int)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	workers := runtime.GOMAXPROCS(0)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 128<<10)
			for i := range work {
				p := root
				if isDir {
					p = filepath.Join(root, filepath.FromSlash(entries[i].Path))
				}
				d, ok := known[p]
				var err error
				if !ok {
					d, err = hashFile(f, p, buf)
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				entries[i].Digest = d
			}
		}()
	}
	for i := range entries {
		if entries[i].Kind != KindFile {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		work <- i
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

func hashFile(f *fsys, p string, buf []byte) (string, error) {
	file, _, err := f.open(p)
	if err != nil {
		return "", err
	}
	defer file.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, file, buf); err != nil {
		return "", fmt.Errorf("reading %s: %w", p, err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// FileDigest is the content digest of a single file, "sha256:<hex>".
func FileDigest(p string) (string, error) {
	return hashFile(&fsys{}, p, make([]byte, 64<<10))
}

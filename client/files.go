package client

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"

	"github.com/ispec-dev/ispec/ensure/call"
	"github.com/ispec-dev/ispec/internal/pathutil"
	"github.com/ispec-dev/ispec/spec"
)

// upload is what a loaded image references on this machine, as an
// call.Upload rooted at the deepest folder that holds all of it.
type upload struct {
	root     string
	specPath string
	spec     []byte
	files    map[string]call.File // by path in the upload
	bulk     map[string]bool      // copied files: content sent only for a build
	secrets  map[string]bool      // secret files: content sent only for a build
}

// item is one path an image reads, as collect found it.
type item struct {
	abs    string
	bulk   bool        // a copied file: content sent only for a build
	secret bool        // a secret file: content sent only for a build
	entry  *spec.Entry // as the tree hashed it; nil: read it
}

// collect gathers every file img (and its parents) reads as an upload
// rooted at the deepest folder that holds all of them.
func collect(img *spec.Image) (*upload, error) {
	items, err := references(img)
	if err != nil {
		return nil, err
	}
	specAbs, err := filepath.Abs(img.File)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(specAbs)
	if err != nil {
		return nil, err
	}
	root := uploadRoot(filepath.Dir(specAbs), items)
	u := &upload{root: root, specPath: rel(root, specAbs), spec: data, files: map[string]call.File{}, bulk: map[string]bool{}, secrets: map[string]bool{}}
	for _, it := range items {
		p := rel(root, it.abs)
		if _, ok := u.files[p]; ok || p == u.specPath {
			continue
		}
		var f call.File
		if e := it.entry; e != nil {
			// Loading the spec hashed it already: its digest and mode are
			// the ones its tag was made from.
			f = call.File{Path: p, Kind: e.Kind, Mode: e.Mode, Size: e.Size, Digest: e.Digest, Target: e.Target}
		} else if f, err = fileOf(it.abs, p); err != nil {
			return nil, err
		}
		u.files[p] = f
		u.bulk[p] = it.bulk
		u.secrets[p] = it.secret
	}
	return u, u.addFolders()
}

// references lists every path img and its parents read: nested spec
// files, lock and ignore files, requirements, copied trees and source,
// and secret files.
func references(img *spec.Image) ([]item, error) {
	var items []item
	add := func(abs string, bulk, secret bool) { items = append(items, item{abs: abs, bulk: bulk, secret: secret}) }
	addTree := func(t *spec.Tree, bulk bool) {
		for i := range t.Entries {
			e := &t.Entries[i]
			items = append(items, item{abs: filepath.Join(t.Root, filepath.FromSlash(e.Path)), bulk: bulk && e.Kind == spec.KindFile, entry: e})
		}
	}
	optional := func(p string) {
		if info, err := os.Lstat(p); err == nil && info.Mode().IsRegular() {
			add(p, false, false)
		}
	}
	for i := img; i != nil; i = i.Parent {
		specFile, err := filepath.Abs(i.File)
		if err != nil {
			return nil, err
		}
		if i != img {
			add(specFile, false, false)
		}
		optional(spec.LockPath(specFile))
		if i.Requirements != nil {
			addTree(i.Requirements, false)
		}
		if len(i.Copies) > 0 {
			optional(filepath.Join(i.Dir, spec.IspecIgnoreFile))
			optional(filepath.Join(i.Dir, spec.DockerIgnoreFile))
		}
		for _, t := range i.Copies {
			addTree(t, true)
		}
		if i.Source != nil {
			addTree(i.Source, true)
			optional(filepath.Join(i.Source.Root, spec.IspecIgnoreFile))
			optional(filepath.Join(i.Source.Root, spec.DockerIgnoreFile))
		}
		for _, lt := range i.Layers {
			for _, t := range lt.Trees() {
				addTree(t, t != lt.Requirements)
			}
			if len(lt.Copies) > 0 {
				optional(filepath.Join(i.Dir, spec.IspecIgnoreFile))
				optional(filepath.Join(i.Dir, spec.DockerIgnoreFile))
			}
		}
		for _, m := range i.Spec.PipSecretMounts {
			add(filepath.Join(i.Dir, filepath.FromSlash(m.Source)), false, true)
		}
		for _, l := range i.Spec.Layers {
			for _, m := range l.Pip.SecretMounts {
				add(filepath.Join(i.Dir, filepath.FromSlash(m.Source)), false, true)
			}
		}
	}
	return items, nil
}

// uploadRoot returns the deepest folder that holds dir and every item.
func uploadRoot(dir string, items []item) string {
	root := dir
	for _, it := range items {
		for !pathutil.Within(root, it.abs) {
			root = filepath.Dir(root)
		}
	}
	return root
}

// addFolders adds an entry for every folder that holds an entry: the
// server creates folders from folder entries only.
func (u *upload) addFolders() error {
	paths := []string{u.specPath}
	for p := range u.files {
		paths = append(paths, p)
	}
	for _, p := range paths {
		for a := path.Dir(p); a != "." && a != "/"; a = path.Dir(a) {
			if _, ok := u.files[a]; ok {
				continue
			}
			info, err := os.Stat(filepath.Join(u.root, filepath.FromSlash(a)))
			if err != nil {
				return err
			}
			u.files[a] = call.File{Path: a, Kind: spec.KindDir, Mode: spec.PermBits(info.Mode())}
		}
	}
	return nil
}

func rel(root, p string) string {
	r, err := filepath.Rel(root, p)
	if err != nil {
		return filepath.ToSlash(p)
	}
	return filepath.ToSlash(r)
}

// fileOf reads one file no tree hashed (a spec, lock, ignore or secret
// file) as the upload carries it: a symlink as its target,
// a folder with its mode, a file with its mode and digest (content is
// read when the upload is built, see files).
func fileOf(abs, p string) (call.File, error) {
	info, err := os.Lstat(abs)
	if err != nil {
		return call.File{}, err
	}
	f := call.File{Path: p, Mode: spec.PermBits(info.Mode())}
	switch {
	case info.Mode()&os.ModeSymlink != 0:
		f.Kind = spec.KindSymlink
		f.Target, err = os.Readlink(abs)
	case info.IsDir():
		f.Kind = spec.KindDir
	case info.Mode().IsRegular():
		f.Kind, f.Size = spec.KindFile, info.Size()
		f.Digest, err = spec.FileDigest(abs)
	default:
		err = fmt.Errorf("%s: not a file, folder or symlink", p)
	}
	return f, err
}

// build returns the upload as a request carries it: copied files always
// by digest and size (their content goes as blobs, see blobs), other
// files with their content inline; secrets sent empty and without a
// digest unless full (a build).
func (u *upload) build(full bool) (call.Upload, error) {
	out := call.Upload{SpecPath: u.specPath, Spec: u.spec}
	paths := make([]string, 0, len(u.files))
	for p := range u.files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		f := u.files[p]
		if f.Kind == spec.KindFile {
			switch {
			case u.secrets[p] && !full:
				// A secret's bytes go to the server only for a build; its
				// digest never does.
				f.Content, f.Digest, f.Size = []byte{}, "", 0
			case u.bulk[p]:
				f.Content = nil
			default:
				data, err := os.ReadFile(filepath.Join(u.root, filepath.FromSlash(p)))
				if err != nil {
					return out, err
				}
				if u.secrets[p] {
					f.Digest = ""
				}
				f.Content, f.Size = data, int64(len(data))
			}
		}
		out.Files = append(out.Files, f)
	}
	return out, nil
}

// blob is one copied file's content, by digest, and a path to read it
// from.
type blob struct {
	digest string
	size   int64
	path   string // in the upload
}

// blobs returns the distinct contents of the copied files.
func (u *upload) blobs() []blob {
	seen := map[string]bool{}
	var out []blob
	for p, f := range u.files {
		// An empty file needs no blob: the server takes no bytes as one.
		if f.Kind != spec.KindFile || !u.bulk[p] || f.Size == 0 {
			continue
		}
		key := fmt.Sprintf("%s/%d", f.Digest, f.Size)
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, blob{digest: f.Digest, size: f.Size, path: p})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	return out
}

package spec

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/ispec-dev/ispec/pylock"
)

// Options are the choices that come from configuration, not the spec file.
type Options struct {
	// Defaults pick base images for specs that name none.
	Defaults Defaults
	// Registry is used for specs that name no registry. Not hashed.
	Registry string
	// IgnoreLock loads the spec as if it had no lock file (for writing
	// one); its nested base specs are loaded with theirs.
	IgnoreLock bool
	// SecretFiles are secret files from the configuration (the pip
	// netrc). Like pip_secret_mounts sources, they are left out of every
	// copied tree and its hash (Image.Excluded says where). They are not
	// spec input, so the spec's path rules do not apply to them.
	SecretFiles []string
	// Digests are the content digests ("sha256:<hex>") of files whose
	// content is not on disk, by their path: a server's upload that left
	// out the content of copied files, to resolve and look up an image
	// before asking for its bytes. Such an image cannot be built (the
	// builder checks every file it sends against its digest).
	Digests map[string]string
	// Root confines every read of the spec and of the files it references
	// (nested base specs, lock, ignore and requirements files, copied
	// trees, secret sources) to one folder: a server's upload. The path
	// given to Load is then relative to it; an absolute path, a .. or a
	// symlink that leads out of it is an invalid spec, and so is a spec,
	// lock, ignore or requirements file that is not a regular file. The
	// root is used while Load runs only.
	//
	// The default, nil, reads the host's files: a nested base spec may be
	// anywhere (../base.yaml in a monorepo).
	Root *os.Root
}

// Image is a loaded spec: validated, normalized, its files hashed, its
// parent loaded, and its identity computed.
type Image struct {
	// File is the spec file's path as given.
	File string
	// Dir is the folder relative paths in the spec start from.
	Dir string
	// Spec is the normalized spec.
	Spec *Spec
	// Base is the base image reference when the base is not a spec.
	Base string
	// Parent is the nested base spec's image, when base_image is {spec: ...}.
	Parent *Image
	// Lock is the spec's lock file, when there is one.
	Lock *Lock
	// Requirements holds the requirements file and every file it includes
	// (-r, -c), recursively, at their paths relative to the spec's folder
	// (Tree.Root), with the folders above them; nil without requirements.
	Requirements *Tree
	// RequirementsFile is the requirements file's path in Requirements.
	RequirementsFile string
	// PythonLock is set when the requirements file is a Python lock file
	// (uv.lock, poetry.lock, pylock.toml): what it pins on each platform.
	// Requirements then holds the lock and the pyproject.toml beside it.
	PythonLock *PythonLock
	// Secrets are the pip_secret_mounts sources, in the same order, with
	// every symlink resolved: the files the build reads them from.
	Secrets []string
	// LayerSecrets are each layer's pip_secret_mounts sources, as Secrets
	// (by the layer's index; nil for a layer without them).
	LayerSecrets [][]string
	// Excluded are the secret files left out of copy and source_root trees.
	Excluded []Exclusion
	// Copies are the trees of Spec.Copy, in the same order.
	Copies []*Tree
	// Source is the source_root tree, if any.
	Source *Tree
	// Layers are the hashed files of Spec.Layers, one per item, in order.
	Layers []*LayerTrees
	// Identity is the image's reference and tag.
	Identity Identity
	// Document is the canonical hash input (what `ispec explain` prints).
	Document []byte

	pinned   map[string]string
	floating []Floating        // this spec's own floating Python requirements
	digests  map[string]string // Options.Digests
	written  []string          // copy as written, for errors about its items
}

// writtenIndex is the position in the spec file of the i-th normalized
// copy path p (normalizing sorts the list).
func (img *Image) writtenIndex(i int, p string) int {
	for j, w := range img.written {
		if path.Clean(strings.TrimSpace(w)) == p {
			return j
		}
	}
	return i
}

// Load reads the spec file at path and everything it references, and
// returns the image it declares. Every problem with the spec is a
// *FieldError (or Errors) that matches ErrInvalid. With Options.Root,
// path is relative to the root and nothing outside it is read.
func Load(ctx context.Context, path string, opts Options) (*Image, error) {
	f, err := newFsys(opts.Root)
	if err != nil {
		return nil, err
	}
	l := &loader{opts: opts, fs: f, done: map[string]*Image{}}
	shown, disk := path, path
	if f.root == nil {
		if disk, err = filepath.Abs(path); err != nil {
			return nil, fmt.Errorf("resolving %s: %w", path, err)
		}
	} else {
		if !filepath.IsLocal(path) {
			return nil, &FieldError{File: path, Msg: "the spec file must be a path inside the upload"}
		}
		shown = filepath.ToSlash(filepath.Clean(path))
		disk = f.disk(shown)
	}
	real, err := f.evalSymlinks(disk)
	if err != nil {
		return nil, &FieldError{File: shown, Msg: describe("the spec file", err)}
	}
	return l.load(ctx, shown, real)
}

type loader struct {
	opts  Options
	fs    *fsys
	stack []string // the real paths of the specs being loaded, outermost first
	done  map[string]*Image
}

// load loads the spec file shown as file (in errors and Image.File),
// whose real path on disk is real.
func (l *loader) load(ctx context.Context, file, real string) (*Image, error) {
	if img, ok := l.done[real]; ok {
		return img, nil
	}
	l.stack = append(l.stack, real)
	defer func() { l.stack = l.stack[:len(l.stack)-1] }()

	data, err := l.fs.readFile(real, MaxFileSize)
	if err != nil {
		return nil, &FieldError{File: file, Msg: describe("the spec file", err)}
	}
	s, err := Decode(file, data, FormatOf(file))
	if err != nil {
		return nil, err
	}
	if s.Registry == "" {
		s.Registry = l.opts.Registry
	}
	c := &collector{file: file, lines: s.lines}
	validate(c, s)
	if err := c.err(); err != nil {
		return nil, err
	}
	img := &Image{File: file, Dir: filepath.Dir(real), Spec: normalize(s), digests: l.opts.Digests, written: s.Copy}
	img.Spec.lines = s.lines
	img.floating = floatingPackages(file, s)

	if p := img.Spec.BaseImage.Spec; p != "" {
		parent, err := l.parent(ctx, img, c, p)
		if err != nil {
			return nil, err
		}
		img.Parent = parent
	} else {
		base, err := l.opts.Defaults.ResolveBase(img.Spec)
		if err != nil {
			field, msg := "base_image", err.Error()
			var be *baseError
			if errors.As(err, &be) {
				field, msg = be.field, be.msg
			}
			c.add(0, field, "%s", msg)
			return nil, c.err()
		}
		img.Base = base
	}
	if err := img.hashFiles(ctx, l.fs, c, l.opts.SecretFiles); err != nil {
		return nil, err
	}
	// IgnoreLock is for the spec being locked: its nested base specs
	// keep their locks, so that a child is locked against its parent's
	// locked image and environment.
	if !l.opts.IgnoreLock || len(l.stack) > 1 {
		if img.Lock, err = readLock(l.fs, file, l.fs.diskOf(file)); err != nil {
			return nil, err
		}
	}
	if img.Parent == nil {
		if img.pinned, err = img.Lock.pinned(file, img.Base, img.Spec.Platform); err != nil {
			return nil, err
		}
	}
	if err := img.applyLockedPython(file); err != nil {
		return nil, err
	}
	img.computeIdentity()
	l.done[real] = img
	return img, nil
}

// parent loads the base spec p that img names. Without a root it may be
// anywhere (../base.yaml in a monorepo); under a root it is a relative
// path that stays inside it, through no symlink that leads out. Chains
// are at most MaxBaseDepth deep, and never cycles.
func (l *loader) parent(ctx context.Context, img *Image, c *collector, p string) (*Image, error) {
	const field = "base_image.spec"
	shown, disk := img.resolve(p), img.resolve(p)
	if l.fs.root != nil {
		if path.IsAbs(p) || filepath.IsAbs(p) || strings.HasPrefix(p, `\`) || (len(p) > 1 && p[1] == ':') {
			c.add(0, field, "%q is absolute; on a server a base spec is read from the upload only: give its path relative to this spec's folder", p)
			return nil, c.err()
		}
		name, err := l.fs.name(disk)
		if err != nil {
			c.add(0, field, "%q climbs out of the upload with ..; on a server a base spec is read from the upload only", p)
			return nil, c.err()
		}
		shown = name
	}
	real, err := l.fs.evalSymlinks(disk)
	if err != nil {
		var out *outsideError
		if errors.As(err, &out) {
			c.add(0, field, "%s; on a server a base spec is read from the upload only", out.Error())
		} else {
			c.add(0, field, "%s (paths are relative to the spec file's folder)", describe(fmt.Sprintf("%q", p), err))
		}
		return nil, c.err()
	}
	for i, s := range l.stack {
		if s == real {
			chain := append(append([]string{}, l.stack[i:]...), real)
			c.add(0, field, "nested specs form a cycle: %s", strings.Join(l.shownChain(chain), " -> "))
			return nil, c.err()
		}
	}
	if len(l.stack) > MaxBaseDepth {
		c.add(0, field, "more than %d nested base specs below %s; name a built base image (base_image: REF) instead of its spec somewhere in the chain",
			MaxBaseDepth, l.shownChain(l.stack[:1])[0])
		return nil, c.err()
	}
	return l.load(ctx, shown, real)
}

// shownChain names real paths for an error: relative to the root under
// one, as they are on the host otherwise.
func (l *loader) shownChain(reals []string) []string {
	out := make([]string, len(reals))
	for i, r := range reals {
		out[i] = r
		if n, err := l.fs.name(r); err == nil && l.fs.root != nil {
			out[i] = n
		}
	}
	return out
}

// BaseRef returns the reference to build FROM for a platform when the base
// is not a spec: the base pinned to the lock's digest when a lock pins it,
// else the base reference itself.
func (img *Image) BaseRef(platform string) string {
	if d, ok := img.pinned[platform]; ok && d != "" {
		return Repository(img.Base) + "@" + d
	}
	return img.Base
}

// Repository strips the tag or digest from a normalized reference.
func Repository(ref string) string {
	ref, _, _ = strings.Cut(ref, "@")
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		ref = ref[:i]
	}
	return ref
}

// resolve returns a spec-relative path as a path usable from here.
func (img *Image) resolve(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(img.Dir, filepath.FromSlash(p))
}

// Exclusion is a secret file left out of a copied tree.
type Exclusion struct {
	// Field is the tree's field: "source_root" or "copy[i]".
	Field string
	// Path is the file's slash-separated path relative to the spec's folder.
	Path string
}

// hashFiles checks the secret sources and hashes the requirements files,
// copy sources and source tree. Every path must stay inside the spec's
// folder (see confine); secret files, the spec file and its lock are left
// out of the trees.
func (img *Image) hashFiles(ctx context.Context, f *fsys, c *collector, extraSecrets []string) error {
	s := img.Spec
	fileErr := func(field, p string, err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var esc *escapeError
		switch {
		case errors.As(err, &esc):
			c.add(0, field, "%s", esc.msg)
		case errors.Is(err, fs.ErrNotExist):
			c.add(0, field, "%s does not exist (paths are relative to the spec file's folder)", p)
		default:
			c.add(0, field, "%s", describe(p, err))
		}
		return c.err()
	}
	secrets, err := img.checkSecrets(f, fileErr)
	if err != nil {
		return err
	}
	for _, p := range extraSecrets {
		if info, err := os.Stat(p); err == nil && info.Mode().IsRegular() {
			secrets = append(secrets, info)
		}
	}
	if format, ok := pylock.FormatOf(s.Requirements); ok {
		if err := img.loadPythonLock(ctx, f, c, format); err != nil {
			return err
		}
	} else if s.Requirements != "" {
		if err := img.loadRequirements(ctx, f, c); err != nil {
			return err
		}
	}
	own := ownFiles(f, f.diskOf(img.File))
	// tree hashes one copied tree, refusing a root that is a secret; the
	// spec file and its lock are left out of it.
	tree := func(field, p string, ig *Ignorer, wantDir bool) (*Tree, error) {
		root, err := f.confine(img.Dir, filepath.ToSlash(p), false)
		var info fs.FileInfo
		if err == nil {
			info, err = f.stat(root)
		}
		if err == nil && wantDir && !info.IsDir() {
			err = fmt.Errorf("%s is not a folder", p)
		}
		if err == nil && ig == nil {
			ig, err = loadIgnorer(f, root)
		}
		if err == nil && ig.WithSecrets(secrets).secret(info) {
			err = fmt.Errorf("%s is a pip secret file; secrets never enter a layer", p)
		}
		var t *Tree
		if err == nil {
			t, err = hashTree(ctx, f, root, ig.WithSecrets(secrets).withOwn(own), img.digests)
		}
		if err != nil {
			return nil, fileErr(field, p, err)
		}
		for _, rel := range t.Excluded {
			img.Excluded = append(img.Excluded, Exclusion{Field: field, Path: path.Join(filepath.ToSlash(p), rel)})
		}
		return t, nil
	}
	if len(s.Copy) > 0 {
		ig, err := loadIgnorer(f, img.Dir)
		if err != nil {
			return fileErr("copy", ".", err)
		}
		for i, p := range s.Copy {
			t, err := tree(fmt.Sprintf("copy[%d]", img.writtenIndex(i, p)), p, ig.under(p), false)
			if err != nil {
				return err
			}
			img.Copies = append(img.Copies, t)
		}
	}
	if copiesSource(s) {
		if img.Source, err = tree("source_root", s.SourceRoot, nil, true); err != nil {
			return err
		}
	}
	return img.hashLayers(ctx, f, c, tree, fileErr)
}

// checkSecrets checks that every pip_secret_mounts source, the top-level
// ones' and the layers', is a readable file inside the spec's folder,
// records where it is read from, and returns the files' identities.
func (img *Image) checkSecrets(f *fsys, fileErr func(field, p string, err error) error) ([]fs.FileInfo, error) {
	var infos []fs.FileInfo
	check := func(field string, m SecretMount) (string, error) {
		p, err := f.confine(img.Dir, filepath.ToSlash(m.Source), true)
		var info fs.FileInfo
		if err == nil {
			info, err = f.stat(p)
		}
		if err == nil && !info.Mode().IsRegular() {
			err = fmt.Errorf("source %s is not a regular file", m.Source)
		}
		if err == nil {
			var file *os.File
			if file, info, err = f.open(p); err == nil {
				file.Close()
			}
		}
		if err != nil {
			if errors.Is(err, fs.ErrPermission) {
				err = fmt.Errorf("source %s cannot be read: %w", m.Source, fs.ErrPermission)
			}
			return "", fileErr(field, m.Source, err)
		}
		infos = append(infos, info)
		return p, nil
	}
	for i, m := range img.Spec.PipSecretMounts {
		p, err := check(fmt.Sprintf("pip_secret_mounts[%d]", i), m)
		if err != nil {
			return nil, err
		}
		img.Secrets = append(img.Secrets, p)
	}
	for i, l := range img.Spec.Layers {
		if len(l.Pip.SecretMounts) == 0 {
			continue
		}
		if img.LayerSecrets == nil {
			img.LayerSecrets = make([][]string, len(img.Spec.Layers))
		}
		for j, m := range l.Pip.SecretMounts {
			p, err := check(fmt.Sprintf("%s.pip_secret_mounts[%d]", LayerField(i), j), m)
			if err != nil {
				return nil, err
			}
			img.LayerSecrets[i] = append(img.LayerSecrets[i], p)
		}
	}
	return infos, nil
}

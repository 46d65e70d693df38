package ensure

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ispec-dev/ispec/spec"
)

// Limits bound an upload.
type Limits struct {
	// MaxFiles is the most files an upload may have.
	MaxFiles int
	// MaxBytes is the most content bytes an upload may carry inline
	// (File.Content and the spec); blobs are bounded by their store.
	MaxBytes int64
	// MaxPath is the longest path or symlink target a file may have.
	MaxPath int
}

// DefaultLimits are the limits of the service's uploads.
func DefaultLimits() Limits {
	return Limits{MaxFiles: 10000, MaxBytes: 8 << 20, MaxPath: 4096}
}

// LoadUpload materializes up in a new private folder (0700) under dir (the
// system's temporary folder when empty) and loads its spec from there with
// opts. Every entry is created through an os.Root at that folder: folders
// only from the upload's folder entries (an entry whose folder is not one
// is refused), no entry below a symlink or a file, symlinks created last
// and never followed, so nothing outside the folder is written or read.
// Files without content come from up.Blobs, or are placeholders whose
// digests the loaded image uses (spec.Options.Digests) when it is nil:
// complete is false then. Errors name files by their paths in the upload.
// cleanup removes the folder; call it when the image is no longer needed
// (after its build).
func LoadUpload(ctx context.Context, up Upload, lim Limits, dir string, opts spec.Options) (img *spec.Image, complete bool, cleanup func(), err error) {
	files, err := checkUpload(up, lim)
	if err != nil {
		return nil, false, nil, err
	}
	tmp, err := os.MkdirTemp(dir, "ispec-upload-")
	if err != nil {
		return nil, false, nil, fmt.Errorf("making an upload folder: %w", err)
	}
	cleanup = func() { os.RemoveAll(tmp) }
	// The spec's loader names files by their real paths: so must the
	// digests of placeholders, however dir is spelled.
	root, err := filepath.EvalSymlinks(tmp)
	if err != nil {
		cleanup()
		return nil, false, nil, fmt.Errorf("making an upload folder: %w", err)
	}
	digests, err := materialize(root, files, up.Blobs)
	if err != nil {
		cleanup()
		return nil, false, nil, err
	}
	opts.Digests = digests
	img, err = loadConfined(ctx, root, up.SpecPath, opts)
	if err != nil {
		cleanup()
		return nil, false, nil, relativeErrors(err, root)
	}
	relativeFiles(img, root)
	return img, len(digests) == 0, cleanup, nil
}

// loadConfined loads the spec at specPath (relative to the upload's
// folder root) through an os.Root at root: nothing outside the upload is
// read, whatever its paths, .. and symlinks say.
func loadConfined(ctx context.Context, root, specPath string, opts spec.Options) (*spec.Image, error) {
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("opening the upload folder: %w", err)
	}
	defer r.Close()
	opts.Root = r
	return spec.Load(ctx, filepath.FromSlash(path.Clean(specPath)), opts)
}

// maxEcho is the longest path an error repeats whole.
const maxEcho = 200

// Short returns p, shortened in its middle to at most about 200 bytes, for
// error messages that repeat what a caller sent.
func Short(p string) string {
	if len(p) <= maxEcho {
		return p
	}
	return strings.ToValidUTF8(p[:maxEcho/2]+"…"+p[len(p)-maxEcho/2:], "?")
}

func badFile(p, format string, args ...any) error {
	return &spec.FieldError{File: Short(p), Msg: fmt.Sprintf(format, args...)}
}

// checkUpload checks every entry of up and returns them, the spec file
// first: clean relative paths, each once, known kinds, valid digests,
// limits, and every entry's folder a folder entry.
func checkUpload(up Upload, lim Limits) ([]File, error) {
	if lim.MaxFiles > 0 && len(up.Files)+1 > lim.MaxFiles {
		return nil, badFile(up.SpecPath, "the upload has %d files; at most %d are allowed", len(up.Files)+1, lim.MaxFiles)
	}
	total := int64(len(up.Spec))
	for _, f := range up.Files {
		total += int64(len(f.Content))
	}
	if lim.MaxBytes > 0 && total > lim.MaxBytes {
		return nil, badFile(up.SpecPath, "the upload carries %d bytes of content inline; at most %d are allowed (send larger files as blobs)", total, lim.MaxBytes)
	}
	doc := up.Spec
	if doc == nil {
		doc = []byte{}
	}
	files := append([]File{{Path: up.SpecPath, Kind: spec.KindFile, Mode: 0o644, Content: doc, Size: int64(len(doc))}}, up.Files...)
	kinds := make(map[string]string, len(files))
	for _, f := range files {
		if msg := checkUploadPath(f.Path, lim.MaxPath, f.Kind == spec.KindDir); msg != "" {
			return nil, badFile(f.Path, "%s", msg)
		}
		if _, dup := kinds[f.Path]; dup {
			return nil, badFile(f.Path, "is in the upload twice")
		}
		kinds[f.Path] = f.Kind
		switch f.Kind {
		case spec.KindDir:
		case spec.KindSymlink:
			if f.Target == "" || strings.ContainsRune(f.Target, 0) {
				return nil, badFile(f.Path, "a symlink needs a target without NUL bytes")
			}
			if lim.MaxPath > 0 && len(f.Target) > lim.MaxPath {
				return nil, badFile(f.Path, "symlink target is longer than %d bytes", lim.MaxPath)
			}
		case spec.KindFile:
			switch {
			case f.Content == nil && !validDigest(f.Digest):
				return nil, badFile(f.Path, "digest %q is not sha256:<64 lowercase hex digits> (a file sent without content needs one)", Short(f.Digest))
			case f.Content == nil && f.Size < 0:
				return nil, badFile(f.Path, "size %d is negative", f.Size)
			case f.Content != nil && f.Digest != "":
				sum := sha256.Sum256(f.Content)
				if got := "sha256:" + hex.EncodeToString(sum[:]); got != f.Digest {
					return nil, badFile(f.Path, "content does not match its digest %s (it is %s)", Short(f.Digest), got)
				}
			}
		case "":
			return nil, badFile(f.Path, "the entry's kind is not set: expected a file, a folder or a symlink")
		default:
			return nil, badFile(f.Path, "kind %q is not file, dir or symlink", Short(f.Kind))
		}
	}
	for _, f := range files {
		for a := path.Dir(f.Path); a != "." && f.Path != "."; a = path.Dir(a) {
			switch kinds[a] {
			case spec.KindDir:
				continue
			case spec.KindSymlink:
				return nil, badFile(f.Path, "is below the symlink %s: nothing may be uploaded through a symlink", Short(a))
			case spec.KindFile:
				return nil, badFile(f.Path, "is below the file %s", Short(a))
			default:
				return nil, badFile(f.Path, "its folder %s is not in the upload: every folder that holds an entry is sent as a folder entry", Short(a))
			}
		}
	}
	return files, nil
}

// materialize creates the checked files under dir through an os.Root, so
// that no entry reaches outside it; it returns the digests of placeholder
// files, by their path on disk.
func materialize(dir string, files []File, blobs Blobs) (map[string]string, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("writing the upload: %w", err)
	}
	defer root.Close()
	sorted := slices.Clone(files)
	// A folder sorts before what it holds.
	slices.SortFunc(sorted, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	failed := func(f File, err error) error {
		return fmt.Errorf("writing %s of the upload: %w", Short(f.Path), relativePathError(err))
	}
	digests := map[string]string{}
	for _, f := range sorted {
		switch f.Kind {
		case spec.KindDir:
			if f.Path != "." {
				if err := root.Mkdir(f.Path, 0o700); err != nil {
					return nil, failed(f, err)
				}
			}
		case spec.KindFile:
			out, err := root.OpenFile(f.Path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return nil, failed(f, err)
			}
			switch {
			case f.Content != nil:
				_, err = out.Write(f.Content)
			case blobs != nil:
				err = blobs.Copy(out, f.Digest, f.Size)
			default:
				digests[filepath.Join(dir, filepath.FromSlash(f.Path))] = f.Digest
			}
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return nil, failed(f, err)
			}
			// Modes are hashed and copied: keep the client's bits, but the
			// server must be able to read its own upload.
			if err := root.Chmod(f.Path, spec.FileMode(f.Mode)|0o400); err != nil {
				return nil, failed(f, err)
			}
		}
	}
	// Folder modes once their files are in (the owner keeps rwx, to remove
	// them), before any symlink exists.
	for _, f := range sorted {
		if f.Kind == spec.KindDir {
			if err := root.Chmod(f.Path, spec.FileMode(f.Mode)|0o700); err != nil {
				return nil, failed(f, err)
			}
		}
	}
	for _, f := range sorted {
		if f.Kind == spec.KindSymlink {
			if err := root.Symlink(f.Target, f.Path); err != nil {
				return nil, failed(f, err)
			}
		}
	}
	return digests, nil
}

// relativePathError drops the folder of a path error (os.Root's name the
// entry by their path in the upload already).
func relativePathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// checkUploadPath returns what is wrong with a path in an upload, or "".
func checkUploadPath(p string, max int, dir bool) string {
	switch {
	case p == "":
		return "a file has no path"
	case max > 0 && len(p) > max:
		return fmt.Sprintf("path is longer than %d bytes", max)
	case strings.ContainsRune(p, 0) || strings.Contains(p, `\`):
		return "path has a NUL byte or a backslash"
	case path.IsAbs(p):
		return "path must be relative to the upload's root"
	}
	clean := path.Clean(p)
	switch {
	case (clean == "." && !dir) || clean == ".." || strings.HasPrefix(clean, "../"):
		return "path climbs out of the upload's root"
	case clean != p:
		return "path is not clean (no \".\" or \"..\" segment, no empty segment, no trailing slash)"
	}
	return ""
}

func validDigest(d string) bool {
	h, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(h) != 64 {
		return false
	}
	_, err := hex.DecodeString(h)
	return err == nil && strings.ToLower(h) == h
}

// relativeErrors names files by their paths in the upload, so that no
// error shows the server's folders.
func relativeErrors(err error, root string) error {
	if !strings.Contains(err.Error(), root) {
		return err
	}
	var es spec.Errors
	var fe *spec.FieldError
	switch {
	case errors.As(err, &es):
		out := make(spec.Errors, len(es))
		for i, e := range es {
			c := *e
			c.File, c.Msg = relPath(c.File, root), strings.ReplaceAll(c.Msg, root+"/", "")
			out[i] = &c
		}
		return out
	case errors.As(err, &fe):
		c := *fe
		c.File, c.Msg = relPath(c.File, root), strings.ReplaceAll(c.Msg, root+"/", "")
		return &c
	}
	return &rootlessError{msg: strings.ReplaceAll(err.Error(), root+"/", ""), err: err}
}

func relPath(p, root string) string {
	if r, err := filepath.Rel(root, p); err == nil && !strings.HasPrefix(r, "..") {
		return filepath.ToSlash(r)
	}
	return p
}

// relativeFiles names an image's spec files by their paths in the upload.
func relativeFiles(img *spec.Image, root string) {
	for ; img != nil; img = img.Parent {
		img.File = relPath(img.File, root)
	}
}

// rootlessError is an error whose message no longer names the upload's
// folder, still matching what it wraps.
type rootlessError struct {
	msg string
	err error
}

func (e *rootlessError) Error() string { return e.msg }
func (e *rootlessError) Unwrap() error { return e.err }

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
	"strings"

	"github.com/ispec-dev/ispec/spec"
)

// File is one file of an Upload, as the client read it.
type File struct {
	// Path is slash-separated and relative to the upload's root.
	Path string
	// Kind is spec.KindFile, spec.KindDir or spec.KindSymlink.
	Kind string
	// Mode holds the 12 Unix permission bits.
	Mode uint32
	// Digest is a file's content digest, "sha256:<hex>". Required when
	// Content is left out; checked against Content when both are given.
	Digest string
	// Content is a file's bytes; nil when the upload omits it.
	Content []byte
	// Target is a symlink's target, as stored. It is recorded, never
	// followed.
	Target string
}

// Upload is a spec and every file it references, from memory: what a
// client of the service sends. Nothing in it names a path of the client's
// machine, and nothing outside it is read.
type Upload struct {
	// SpecPath is the spec file's path in the upload.
	SpecPath string
	// Spec is the spec file's content.
	Spec []byte
	// Files are the other files: nested specs, lock and ignore files,
	// requirements, copied files and source, secret sources.
	Files []File
}

// Limits bound an upload.
type Limits struct {
	// MaxFiles is the most files an upload may have.
	MaxFiles int
	// MaxBytes is the most content bytes an upload may have.
	MaxBytes int64
	// MaxPath is the longest path a file may have.
	MaxPath int
}

// DefaultLimits are the limits of the service's uploads.
func DefaultLimits() Limits {
	return Limits{MaxFiles: 10000, MaxBytes: 64 << 20, MaxPath: 4096}
}

// LoadUpload writes up into a new private folder under dir (the system's
// temporary folder when empty) and loads its spec from there with opts.
// Files whose content is omitted are placeholders whose digests the
// loaded image uses (spec.Options.Digests): such an image resolves and
// can be looked up, not built. Errors name files by their paths in the
// upload. cleanup removes the folder; call it when the image is no longer
// needed (after its build).
func LoadUpload(ctx context.Context, up Upload, lim Limits, dir string, opts spec.Options) (img *spec.Image, complete bool, cleanup func(), err error) {
	root, err := os.MkdirTemp(dir, "ispec-upload-")
	if err != nil {
		return nil, false, nil, fmt.Errorf("making an upload folder: %w", err)
	}
	cleanup = func() { os.RemoveAll(root) }
	digests, err := writeUpload(root, up, lim)
	if err != nil {
		cleanup()
		return nil, false, nil, err
	}
	opts.Digests = digests
	img, err = spec.Load(ctx, filepath.Join(root, filepath.FromSlash(up.SpecPath)), opts)
	if err != nil {
		cleanup()
		return nil, false, nil, relativeErrors(err, root)
	}
	relativeFiles(img, root)
	return img, len(digests) == 0, cleanup, nil
}

// writeUpload checks and writes every file under root; it returns the
// digests of files whose content was left out, by their path on disk.
func writeUpload(root string, up Upload, lim Limits) (map[string]string, error) {
	bad := func(p, format string, args ...any) error {
		return &spec.FieldError{File: p, Msg: fmt.Sprintf(format, args...)}
	}
	if len(up.Files)+1 > lim.MaxFiles && lim.MaxFiles > 0 {
		return nil, bad(up.SpecPath, "the upload has %d files; at most %d are allowed", len(up.Files)+1, lim.MaxFiles)
	}
	total := int64(len(up.Spec))
	for _, f := range up.Files {
		total += int64(len(f.Content))
	}
	if lim.MaxBytes > 0 && total > lim.MaxBytes {
		return nil, bad(up.SpecPath, "the upload has %d bytes of content; at most %d are allowed", total, lim.MaxBytes)
	}
	files := append([]File{{Path: up.SpecPath, Kind: spec.KindFile, Mode: 0o644, Content: up.Spec}}, up.Files...)
	digests := map[string]string{}
	seen := map[string]bool{}
	for _, f := range files {
		if msg := checkUploadPath(f.Path, lim.MaxPath, f.Kind == spec.KindDir); msg != "" {
			return nil, bad(f.Path, "%s", msg)
		}
		clean := path.Clean(f.Path)
		if seen[clean] && clean != "." {
			return nil, bad(f.Path, "is in the upload twice")
		}
		seen[clean] = true
		disk := filepath.Join(root, filepath.FromSlash(clean))
		if err := os.MkdirAll(filepath.Dir(disk), 0o700); err != nil {
			return nil, fmt.Errorf("writing the upload: %w", err)
		}
		mode := os.FileMode(f.Mode & 0o777)
		switch f.Kind {
		case spec.KindDir:
			if err := os.MkdirAll(disk, 0o700); err != nil {
				return nil, fmt.Errorf("writing the upload: %w", err)
			}
			if err := os.Chmod(disk, mode|0o700); err != nil {
				return nil, fmt.Errorf("writing the upload: %w", err)
			}
		case spec.KindSymlink:
			if f.Target == "" || strings.ContainsRune(f.Target, 0) {
				return nil, bad(f.Path, "a symlink needs a target")
			}
			if err := os.Symlink(f.Target, disk); err != nil {
				return nil, fmt.Errorf("writing the upload: %w", err)
			}
		case spec.KindFile, "":
			if f.Content == nil && f.Digest != "" {
				if !validDigest(f.Digest) {
					return nil, bad(f.Path, "digest %q is not sha256:<64 hex digits>", f.Digest)
				}
				digests[disk] = f.Digest
			} else if f.Digest != "" {
				sum := sha256.Sum256(f.Content)
				if got := "sha256:" + hex.EncodeToString(sum[:]); got != f.Digest {
					return nil, bad(f.Path, "content does not match its digest %s (it is %s)", f.Digest, got)
				}
			}
			if err := os.WriteFile(disk, f.Content, 0o600); err != nil {
				return nil, fmt.Errorf("writing the upload: %w", err)
			}
			// Modes are hashed and copied: keep the client's bits, but the
			// server must be able to read its own upload.
			if err := os.Chmod(disk, spec.FileMode(f.Mode)|0o400); err != nil {
				return nil, fmt.Errorf("writing the upload: %w", err)
			}
		default:
			return nil, bad(f.Path, "kind %q is not file, dir or symlink", f.Kind)
		}
	}
	return digests, nil
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
	if (clean == "." && !dir) || clean == ".." || strings.HasPrefix(clean, "../") {
		return "path climbs out of the upload's root"
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

package spec

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"path"
	"path/filepath"

	"github.com/ispec-dev/ispec/pylock"
)

// MaxPythonLockSize is the largest Python lock file (uv.lock,
// poetry.lock, pylock.toml) or pyproject.toml a spec may name: locks of
// large projects outgrow MaxFileSize.
const MaxPythonLockSize = 16 << 20

// PythonLock is a Python lock file a spec names as its requirements, with
// the exact distributions it installs on each platform.
type PythonLock struct {
	// Format is the lock's format (uv.lock, poetry.lock, pylock.toml).
	Format pylock.Format
	// Pins are the distributions to install, by normalized platform.
	Pins map[string][]pylock.Pin
	// Indexes are indexes the lock names for artifacts it records
	// without URLs (poetry.lock's legacy sources).
	Indexes []string
	// Pyproject is the pyproject.toml beside the lock, relative to the
	// spec's folder; "" when there is none.
	Pyproject string
	// Resolved is true when the pins come from the spec's own lock file
	// (`ispec lock`): they replace the packages and the requirements
	// file, and Format is FormatIspecLock.
	Resolved bool
}

// loadPythonLock reads the Python lock file the spec's requirements name
// (and the pyproject.toml beside a uv.lock or poetry.lock), chooses each
// platform's pins for the spec's python_version, and keeps both files in
// img.Requirements, so that they are hashed and sent like a requirements
// file. A lock that cannot be installed as written is an invalid spec
// naming the lock file, the line and the package.
func (img *Image) loadPythonLock(ctx context.Context, f *fsys, c *collector, format pylock.Format) error {
	rel := path.Clean(filepath.ToSlash(img.Spec.Requirements))
	shownDir := filepath.Dir(img.File)
	shown := func(p string) string { return filepath.Join(shownDir, filepath.FromSlash(p)) }
	files := map[string]Entry{}
	read := func(p string, optional bool) ([]byte, bool) {
		disk, err := f.confine(img.Dir, p, true)
		var data []byte
		if err == nil {
			data, err = f.readFile(disk, MaxPythonLockSize)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil, false
			}
			var esc *escapeError
			switch {
			case errors.As(err, &esc):
				c.add(0, "requirements", "%s", esc.msg)
			case errors.Is(err, fs.ErrNotExist):
				if optional {
					return nil, true
				}
				c.add(0, "requirements", "%s does not exist (paths are relative to the spec file's folder)", p)
			default:
				c.add(0, "requirements", "%s", describe(p, err))
			}
			return nil, false
		}
		sum := sha256.Sum256(data)
		files[p] = Entry{Path: p, Kind: KindFile, Mode: 0o644, Size: int64(len(data)), Digest: "sha256:" + hex.EncodeToString(sum[:])}
		return data, true
	}
	data, ok := read(rel, false)
	if !ok {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return c.err()
	}
	lock := &PythonLock{Format: format, Pins: map[string][]pylock.Pin{}}
	var pyproject []byte
	if format.UsesPyproject() {
		pp := path.Join(path.Dir(rel), "pyproject.toml")
		if pyproject, ok = read(pp, true); !ok {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return c.err()
		}
		if pyproject != nil {
			lock.Pyproject = pp
		}
	}
	parsed, err := pylock.Parse(shown(rel), format, data, pyproject)
	if err == nil {
		seen := map[string]bool{}
		for _, plat := range img.Spec.Platform {
			pins, perr := parsed.Pins(pylock.Target{Platform: plat, Python: img.Spec.PythonVersion})
			if perr != nil {
				for _, e := range lockErrors(perr) {
					if !seen[e.Error()] {
						seen[e.Error()] = true
						err = errors.Join(err, e)
					}
				}
				continue
			}
			lock.Pins[plat] = pins
		}
	}
	if err != nil {
		for _, e := range lockErrors(err) {
			var le *pylock.Error
			if errors.As(e, &le) {
				msg := le.Msg
				if le.Package != "" {
					msg = "package " + le.Package + ": " + msg
				}
				c.errs = append(c.errs, &FieldError{File: le.File, Line: le.Line, Field: "requirements", Msg: maskURLs(msg)})
			} else {
				c.add(0, "requirements", "%s: %v", rel, e)
			}
		}
		return c.err()
	}
	lock.Indexes = parsed.Indexes
	img.Requirements = requirementsTree(img.Dir, files)
	img.RequirementsFile = rel
	img.PythonLock = lock
	return nil
}

// lockErrors splits a joined error into its parts.
func lockErrors(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, lockErrors(e)...)
		}
		return out
	}
	return []error{err}
}

// pythonLockDocument is the requirements member of the hash document for
// a Python lock file: its format and the digests of the lock and of the
// pyproject.toml beside it.
func (img *Image) pythonLockDocument() map[string]any {
	doc := map[string]any{"format": string(img.PythonLock.Format)}
	for _, e := range img.Requirements.Entries {
		switch {
		case e.Kind != KindFile:
		case e.Path == img.RequirementsFile:
			doc["lock"] = e.Digest
		case e.Path == img.PythonLock.Pyproject:
			doc["pyproject"] = e.Digest
		}
	}
	return doc
}

// PythonPins returns the distributions a Python lock pins for platform
// (normalized), and whether the spec has a Python lock.
func (img *Image) PythonPins(platform string) ([]pylock.Pin, bool) {
	if img.PythonLock == nil {
		return nil, false
	}
	return img.PythonLock.Pins[NormalizePlatform(platform)], true
}

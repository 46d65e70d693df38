package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sort"

	"github.com/ispec-dev/ispec/internal/atomicfile"
)

// LockVersion is the version of the lock file format (docs/lockfile.md).
const LockVersion = 1

// Lock pins what a spec leaves floating. It lives beside the spec file, at
// LockPath(spec file).
type Lock struct {
	// Version is LockVersion.
	Version int `json:"version"`
	// BaseImage pins the base image reference, when the base is not a spec.
	BaseImage *LockedImage `json:"base_image,omitempty"`
	// Parent records the nested base spec's tag, when the base is a spec.
	Parent *LockedParent `json:"parent,omitempty"`
	// Python pins what the spec's packages and requirements file resolve
	// to, per platform, when `ispec lock` resolved them.
	Python *LockedPython `json:"python,omitempty"`
}

// LockedImage is a base image reference pinned to digests.
type LockedImage struct {
	// Ref is the normalized reference the spec names.
	Ref string `json:"ref"`
	// Digest is what Ref pointed to: an index or a single manifest.
	Digest string `json:"digest"`
	// Platforms maps each target platform to its manifest digest.
	Platforms map[string]string `json:"platforms"`
}

// LockedParent is the tag of a nested base spec when the lock was written.
type LockedParent struct {
	// Spec is the parent spec file, as the child names it.
	Spec string `json:"spec"`
	// Ref is the parent image's reference (registry/name:tag).
	Ref string `json:"ref"`
}

// LockPath returns the lock file path of a spec file: the same name with
// ".lock" appended.
func LockPath(specFile string) string { return specFile + ".lock" }

// ReadLock reads the lock file of a spec file; nil when there is none.
// It must be a regular file of at most MaxFileSize bytes.
func ReadLock(specFile string) (*Lock, error) {
	return readLock(&fsys{}, specFile, specFile)
}

// readLock reads the lock file of the spec file shown as specFile, whose
// path on disk is disk, from f.
func readLock(f *fsys, specFile, disk string) (*Lock, error) {
	p := LockPath(specFile)
	data, err := f.readFile(LockPath(disk), MaxFileSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, &FieldError{File: p, Msg: describe("the lock file", err)}
	}
	return ParseLock(p, data)
}

// ParseLock decodes the lock file shown as file (its name in errors) from
// data, strictly: an unknown field or another format version is an error.
func ParseLock(file string, data []byte) (*Lock, error) {
	var l Lock
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return nil, &FieldError{File: file, Msg: fmt.Sprintf("not a valid lock file: %v", err)}
	}
	if l.Version != LockVersion {
		return nil, &FieldError{File: file, Field: "version", Msg: fmt.Sprintf("lock file version %d is not supported; expected %d (run ispec lock again)", l.Version, LockVersion)}
	}
	return &l, nil
}

// EncodeLock returns the lock file's bytes, as WriteLock writes them
// (indented JSON, a final newline; Version set to LockVersion).
func EncodeLock(l *Lock) ([]byte, error) {
	l.Version = LockVersion
	data, err := json.MarshalIndent(l, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

// WriteLock writes a lock file atomically: a crash leaves either the old
// file or the new one.
func WriteLock(specFile string, l *Lock) error {
	data, err := EncodeLock(l)
	if err != nil {
		return err
	}
	return WriteLockData(specFile, data)
}

// WriteLockData writes the encoded lock data (EncodeLock) as the lock file
// of specFile, atomically.
func WriteLockData(specFile string, data []byte) error {
	// 0600, as the lock file was always written (a temporary file's mode).
	if err := atomicfile.WriteFile(LockPath(specFile), data, 0o600); err != nil {
		return fmt.Errorf("writing lock file: %w", err)
	}
	return nil
}

// pinned returns the lock's base digests for the given platforms as the
// hash encodes them, or an error when the lock does not fit the spec.
func (l *Lock) pinned(file, base string, platforms []string) (map[string]string, error) {
	if l == nil || l.BaseImage == nil {
		return nil, nil
	}
	lp := LockPath(file)
	if l.BaseImage.Ref != base {
		return nil, &FieldError{File: lp, Field: "base_image.ref", Msg: fmt.Sprintf("lock pins %s but the spec's base is %s; run ispec lock again", l.BaseImage.Ref, base)}
	}
	// Keys are compared in their one spelling, so a lock written with
	// linux/arm64/v8 still pins linux/arm64.
	locked := make(map[string]string, len(l.BaseImage.Platforms))
	for p, d := range l.BaseImage.Platforms {
		locked[NormalizePlatform(p)] = d
	}
	out := make(map[string]string, len(platforms))
	var missing []string
	for _, p := range platforms {
		d, ok := locked[p]
		if !ok {
			missing = append(missing, p)
			continue
		}
		out[p] = d
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, &FieldError{File: lp, Field: "base_image.platforms", Msg: fmt.Sprintf("no digest for %v; run ispec lock again", missing)}
	}
	return out, nil
}

// Package pyindex makes small pure-Python wheels and serves them as a PEP 503
// "simple" package index, so tests and the development environment can
// install Python packages without reaching PyPI.
package pyindex

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/ispec-dev/ispec/internal/atomicfile"
)

// Wheel describes a pure-Python wheel to generate.
type Wheel struct {
	// Name is the distribution name, e.g. "ispec-demo-a".
	Name string
	// Version is the distribution version, e.g. "1.0.0".
	Version string
	// Files maps paths inside the wheel (e.g. "ispec_demo_a/__init__.py") to
	// their content. When empty, a package named after the distribution is
	// generated with __init__.py (defining __version__) and __main__.py
	// (printing "<name> <version>").
	Files map[string]string
	// RequiresDist lists PEP 508 requirements written as Requires-Dist.
	RequiresDist []string
	// ProvidesExtra lists the extras written as Provides-Extra (pip
	// ignores an extra a distribution does not provide).
	ProvidesExtra []string
	// Summary is the one-line description written to METADATA.
	Summary string
}

// wheelTime is the fixed modification time of every zip entry, so that the
// same wheel always has the same bytes and the same sha256.
var wheelTime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

var nameRun = regexp.MustCompile(`[-_.]+`)

// Normalize returns the PEP 503 normalized form of a project name.
func Normalize(name string) string {
	return strings.ToLower(nameRun.ReplaceAllString(name, "-"))
}

// escapeName returns the form of a distribution name used in wheel file and
// .dist-info directory names (PEP 427 / binary distribution format).
func escapeName(name string) string {
	return strings.ToLower(nameRun.ReplaceAllString(name, "_"))
}

// ModuleName returns the import name generated for a distribution when a
// Wheel has no Files: the escaped name, e.g. "ispec_demo_a".
func ModuleName(name string) string { return escapeName(name) }

// FileName returns the wheel file name for a distribution name and version.
func FileName(name, version string) string {
	return fmt.Sprintf("%s-%s-py3-none-any.whl", escapeName(name), version)
}

// WriteWheel writes a py3-none-any wheel for name and version into dir and
// returns its path. files maps paths inside the wheel to their content; when
// nil, a small package named after the distribution is generated.
func WriteWheel(dir, name, version string, files map[string]string) (string, error) {
	return Write(dir, Wheel{Name: name, Version: version, Files: files})
}

// Write writes the wheel w into dir and returns its path. The output is
// deterministic: the same Wheel always yields the same bytes.
func Write(dir string, w Wheel) (string, error) {
	data, err := Build(w)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("create wheel dir: %w", err)
	}
	path := filepath.Join(dir, FileName(w.Name, w.Version))
	if err := atomicfile.WriteFile(path, data, 0o644); err != nil {
		return "", fmt.Errorf("write wheel: %w", err)
	}
	return path, nil
}

var versionRE = regexp.MustCompile(`^[0-9][0-9A-Za-z.+!-]*$`)
var nameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$`)

// Build returns the bytes of the wheel w.
func Build(w Wheel) ([]byte, error) {
	if !nameRE.MatchString(w.Name) {
		return nil, fmt.Errorf("invalid distribution name %q", w.Name)
	}
	if !versionRE.MatchString(w.Version) {
		return nil, fmt.Errorf("invalid version %q for %s", w.Version, w.Name)
	}
	mod := escapeName(w.Name)
	files := w.Files
	if len(files) == 0 {
		files = map[string]string{
			mod + "/__init__.py": fmt.Sprintf("__version__ = %q\n", w.Version),
			mod + "/__main__.py": fmt.Sprintf("print(%q)\n", w.Name+" "+w.Version),
		}
	}
	distInfo := fmt.Sprintf("%s-%s.dist-info", mod, w.Version)

	summary := w.Summary
	if summary == "" {
		summary = "Test package " + w.Name
	}
	var meta strings.Builder
	fmt.Fprintf(&meta, "Metadata-Version: 2.1\nName: %s\nVersion: %s\nSummary: %s\n", w.Name, w.Version, summary)
	for _, x := range w.ProvidesExtra {
		fmt.Fprintf(&meta, "Provides-Extra: %s\n", x)
	}
	for _, r := range w.RequiresDist {
		fmt.Fprintf(&meta, "Requires-Dist: %s\n", r)
	}

	names := make([]string, 0, len(files))
	for p := range files {
		if strings.HasPrefix(p, "/") || strings.Contains(p, "..") || strings.HasPrefix(p, distInfo+"/") {
			return nil, fmt.Errorf("invalid file path %q in wheel %s", p, w.Name)
		}
		names = append(names, p)
	}
	sort.Strings(names)

	type entry struct{ name, body string }
	entries := make([]entry, 0, len(names)+3)
	for _, p := range names {
		entries = append(entries, entry{p, files[p]})
	}
	entries = append(entries,
		entry{distInfo + "/METADATA", meta.String()},
		entry{distInfo + "/WHEEL", "Wheel-Version: 1.0\nGenerator: ispec-pyindex\nRoot-Is-Purelib: true\nTag: py3-none-any\n"},
	)

	var record strings.Builder
	for _, e := range entries {
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", e.name, RecordHash([]byte(e.body)), len(e.body))
	}
	fmt.Fprintf(&record, "%s/RECORD,,\n", distInfo)
	entries = append(entries, entry{distInfo + "/RECORD", record.String()})

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate, Modified: wheelTime}
		h.SetMode(0o644)
		f, err := zw.CreateHeader(h)
		if err != nil {
			return nil, fmt.Errorf("zip %s: %w", e.name, err)
		}
		if _, err := f.Write([]byte(e.body)); err != nil {
			return nil, fmt.Errorf("zip %s: %w", e.name, err)
		}
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("zip wheel: %w", err)
	}
	return buf.Bytes(), nil
}

// RecordHash returns the RECORD form of a sha256 digest of data: urlsafe
// base64 without padding.
func RecordHash(data []byte) string {
	sum := sha256.Sum256(data)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

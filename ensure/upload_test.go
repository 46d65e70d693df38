package ensure

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ispec-dev/ispec/spec"
)

func digest(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

var uploadSpec = []byte("name: app\nregistry: reg.example\nrequirements: reqs.txt\ncopy: [data]\nsource_root: src\n")

func uploadFiles(omit bool) []File {
	files := []File{
		{Path: "reqs.txt", Kind: spec.KindFile, Mode: 0o644, Content: []byte("-c pins.txt\nflask\n")},
		{Path: "pins.txt", Kind: spec.KindFile, Mode: 0o644, Content: []byte("flask==3.0.0\n")},
		{Path: "data", Kind: spec.KindDir, Mode: 0o755},
		{Path: "data/a.bin", Kind: spec.KindFile, Mode: 0o600, Content: []byte("aaaa")},
		{Path: "data/link", Kind: spec.KindSymlink, Target: "/etc/passwd"},
		{Path: "src", Kind: spec.KindDir, Mode: 0o755},
		{Path: "src/main.py", Kind: spec.KindFile, Mode: 0o755, Content: []byte("print(1)\n")},
	}
	if omit {
		for i := range files {
			if files[i].Kind == spec.KindFile && (strings.HasPrefix(files[i].Path, "data/") || strings.HasPrefix(files[i].Path, "src/")) {
				files[i].Digest, files[i].Content = digest(files[i].Content), nil
			}
		}
	}
	return files
}

// writeDisk writes the same files to a folder, as a client has them.
func writeDisk(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "spec.yaml"), uploadSpec, 0o644)
	for _, f := range uploadFiles(false) {
		p := filepath.Join(dir, f.Path)
		switch f.Kind {
		case spec.KindDir:
			os.MkdirAll(p, os.FileMode(f.Mode))
			os.Chmod(p, os.FileMode(f.Mode))
		case spec.KindSymlink:
			os.Symlink(f.Target, p)
		default:
			os.WriteFile(p, f.Content, os.FileMode(f.Mode))
			os.Chmod(p, os.FileMode(f.Mode))
		}
	}
	return dir
}

func TestUploadHasTheTagOfTheSameFilesOnDisk(t *testing.T) {
	onDisk, err := spec.Load(context.Background(), filepath.Join(writeDisk(t), "spec.yaml"), spec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, omit := range []bool{false, true} {
		img, complete, cleanup, err := LoadUpload(context.Background(), Upload{SpecPath: "spec.yaml", Spec: uploadSpec, Files: uploadFiles(omit)}, DefaultLimits(), t.TempDir(), spec.Options{})
		if err != nil {
			t.Fatalf("omit=%v: %v", omit, err)
		}
		if img.Identity.Tag != onDisk.Identity.Tag {
			t.Errorf("omit=%v: tag %s, on disk %s", omit, img.Identity.Tag, onDisk.Identity.Tag)
		}
		if complete == omit {
			t.Errorf("omit=%v: complete = %v", omit, complete)
		}
		if img.File != "spec.yaml" {
			t.Errorf("image file %q names the server's folder", img.File)
		}
		cleanup()
		if _, err := os.Stat(img.Dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cleanup left %s", img.Dir)
		}
	}
}

func TestUploadRefusesPathsOutsideItsRoot(t *testing.T) {
	for name, f := range map[string]File{
		"absolute":     {Path: "/etc/passwd", Content: []byte("x")},
		"climbs":       {Path: "../x", Content: []byte("x")},
		"climbs later": {Path: "a/../../x", Content: []byte("x")},
		"root file":    {Path: ".", Content: []byte("x")},
		"backslash":    {Path: `a\..\..\x`, Content: []byte("x")},
		"nul":          {Path: "a\x00b", Content: []byte("x")},
		"empty":        {Path: "", Content: []byte("x")},
		"bad digest":   {Path: "x", Digest: "md5:abc"},
		"wrong digest": {Path: "x", Content: []byte("x"), Digest: digest([]byte("y"))},
		"unknown kind": {Path: "x", Kind: "fifo"},
		"twice":        {Path: "spec.yaml", Content: []byte("name: b\n")},
	} {
		_, _, _, err := LoadUpload(context.Background(), Upload{SpecPath: "spec.yaml", Spec: []byte("name: a\n"), Files: []File{f}}, DefaultLimits(), t.TempDir(), spec.Options{})
		var fe *spec.FieldError
		if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) || fe.File != f.Path {
			t.Errorf("%s: err = %v, want an invalid-input error naming %q", name, err, f.Path)
		}
	}
}

func TestUploadLimits(t *testing.T) {
	up := Upload{SpecPath: "spec.yaml", Spec: []byte("name: a\n"), Files: []File{{Path: "a", Content: make([]byte, 100)}, {Path: "b", Content: make([]byte, 100)}}}
	for name, lim := range map[string]Limits{"files": {MaxFiles: 2}, "bytes": {MaxBytes: 150}, "path": {MaxPath: 4}} {
		if name == "path" {
			up.SpecPath = "spec.yaml"
		}
		if _, _, _, err := LoadUpload(context.Background(), up, lim, t.TempDir(), spec.Options{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s limit: err = %v, want invalid", name, err)
		}
	}
}

func TestUploadSpecErrorsNameUploadPaths(t *testing.T) {
	dir := t.TempDir()
	_, _, _, err := LoadUpload(context.Background(), Upload{SpecPath: "sub/spec.yaml", Spec: []byte("name: a\npackages: ['not a req!']\n")}, DefaultLimits(), dir, spec.Options{})
	if err == nil || !strings.HasPrefix(err.Error(), "sub/spec.yaml:2: packages[0]") || strings.Contains(err.Error(), dir) {
		t.Errorf("err = %v, want it to name sub/spec.yaml:2 and packages[0] only", err)
	}
}

package ensure

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
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
	canary := t.TempDir()
	os.WriteFile(filepath.Join(canary, "x"), []byte("host file\n"), 0o644)
	file := func(p string) File { return File{Path: p, Kind: spec.KindFile, Mode: 0o644, Content: []byte("x")} }
	dir := func(p string) File { return File{Path: p, Kind: spec.KindDir, Mode: 0o755} }
	link := func(p, target string) File { return File{Path: p, Kind: spec.KindSymlink, Target: target} }
	for name, tc := range map[string]struct {
		files []File
		bad   string // the path the error must name
	}{
		"absolute":             {[]File{file("/etc/passwd")}, "/etc/passwd"},
		"absolute canary":      {[]File{file(filepath.Join(canary, "x"))}, filepath.Join(canary, "x")},
		"climbs":               {[]File{file("../x")}, "../x"},
		"climbs later":         {[]File{dir("a"), file("a/../../x")}, "a/../../x"},
		"dot dot inside":       {[]File{dir("a"), dir("b"), file("a/../b/x")}, "a/../b/x"},
		"dot segment":          {[]File{dir("a"), file("a/./x")}, "a/./x"},
		"leading dot":          {[]File{file("./x")}, "./x"},
		"empty segment":        {[]File{dir("a"), file("a//x")}, "a//x"},
		"trailing slash":       {[]File{dir("a/")}, "a/"},
		"root file":            {[]File{file(".")}, "."},
		"backslash":            {[]File{file(`a\..\..\x`)}, `a\..\..\x`},
		"nul":                  {[]File{file("a\x00b")}, "a\x00b"},
		"empty":                {[]File{file("")}, ""},
		"bad digest":           {[]File{{Path: "x", Kind: spec.KindFile, Digest: "md5:abc"}}, "x"},
		"wrong digest":         {[]File{{Path: "x", Kind: spec.KindFile, Content: []byte("x"), Digest: digest([]byte("y"))}}, "x"},
		"unknown kind":         {[]File{{Path: "x", Kind: "fifo"}}, "x"},
		"unset kind":           {[]File{{Path: "x", Content: []byte("x")}}, "x"},
		"twice":                {[]File{file("spec.yaml")}, "spec.yaml"},
		"file and symlink":     {[]File{file("x"), link("x", "y")}, "x"},
		"under absolute link":  {[]File{link("esc", canary), file("esc/x")}, "esc/x"},
		"under climbing link":  {[]File{link("esc", "../../../../../../.."+canary), dir("esc"), file("esc/x")}, "esc"},
		"under link, no dir":   {[]File{link("esc", "../.."), file("esc/x")}, "esc/x"},
		"deep under link":      {[]File{link("esc", canary), dir("esc/d"), file("esc/d/x")}, "esc/d"},
		"under nested link":    {[]File{dir("d"), link("d/l", canary), file("d/l/x")}, "d/l/x"},
		"link to link":         {[]File{link("a", canary), link("a/b", "x")}, "a/b"},
		"folder not declared":  {[]File{file("a/x")}, "a/x"},
		"spec folder missing":  {nil, "sub/spec.yaml"},
		"under a file":         {[]File{file("f"), file("f/x")}, "f/x"},
		"symlink without name": {[]File{link("l", "")}, "l"},
	} {
		specPath := "spec.yaml"
		if name == "spec folder missing" {
			specPath = "sub/spec.yaml"
		}
		up := t.TempDir()
		_, _, _, err := LoadUpload(context.Background(), Upload{SpecPath: specPath, Spec: []byte("name: a\n"), Files: tc.files}, DefaultLimits(), up, spec.Options{})
		var fe *spec.FieldError
		if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) || fe.File != tc.bad {
			t.Errorf("%s: err = %v, want an invalid-input error naming %q", name, err, tc.bad)
		}
		if strings.Contains(fmt.Sprint(err), up) {
			t.Errorf("%s: err %v names the server's folder", name, err)
		}
		if got, _ := os.ReadDir(up); len(got) != 0 {
			t.Errorf("%s: a refused upload left %v", name, got)
		}
	}
	got, _ := os.ReadDir(canary)
	if data, _ := os.ReadFile(filepath.Join(canary, "x")); len(got) != 1 || string(data) != "host file\n" {
		t.Errorf("the folder outside the upload changed: %v, %q", got, data)
	}
}

func TestUploadKeepsSymlinksUnfollowed(t *testing.T) {
	canary := t.TempDir()
	os.WriteFile(filepath.Join(canary, "secret"), []byte("host secret\n"), 0o600)
	files := []File{
		{Path: "data", Kind: spec.KindDir, Mode: 0o755},
		{Path: "data/abs", Kind: spec.KindSymlink, Target: filepath.Join(canary, "secret")},
		{Path: "data/climb", Kind: spec.KindSymlink, Target: "../../../../../../../../.." + canary},
		{Path: "data/a.txt", Kind: spec.KindFile, Mode: 0o644, Content: []byte("a\n")},
	}
	tag := func() string {
		img, _, cleanup, err := LoadUpload(context.Background(), Upload{SpecPath: "spec.yaml", Spec: []byte("name: a\nregistry: r.example\ncopy: [data]\n"), Files: files}, DefaultLimits(), t.TempDir(), spec.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer cleanup()
		for _, e := range img.Copies[0].Entries {
			if e.Path == "abs" && (e.Kind != spec.KindSymlink || e.Target != filepath.Join(canary, "secret")) {
				t.Errorf("abs entry %+v, want the symlink as sent", e)
			}
		}
		target, err := os.Readlink(filepath.Join(img.Dir, "data", "climb"))
		if err != nil || !strings.HasSuffix(target, canary) {
			t.Errorf("climb = %q, %v; want the symlink as sent", target, err)
		}
		return img.Identity.Tag
	}
	first := tag()
	os.WriteFile(filepath.Join(canary, "secret"), []byte("changed\n"), 0o600)
	if tag() != first {
		t.Error("the tag depends on a host file a symlink points to")
	}
	if got, _ := os.ReadDir(canary); len(got) != 1 {
		t.Errorf("the folder outside the upload changed: %v", got)
	}
}

type blobMap map[string][]byte

func (m blobMap) Copy(w io.Writer, d string, size int64) error {
	b, ok := m[d]
	if !ok || int64(len(b)) != size {
		return fmt.Errorf("blob %s: not held", d)
	}
	_, err := w.Write(b)
	return err
}

func TestUploadTakesOmittedFilesFromBlobs(t *testing.T) {
	onDisk, err := spec.Load(context.Background(), filepath.Join(writeDisk(t), "spec.yaml"), spec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	blobs := blobMap{}
	files := uploadFiles(false)
	for i, f := range files {
		if f.Kind == spec.KindFile && (strings.HasPrefix(f.Path, "data/") || strings.HasPrefix(f.Path, "src/")) {
			blobs[digest(f.Content)] = f.Content
			files[i].Digest, files[i].Size, files[i].Content = digest(f.Content), int64(len(f.Content)), nil
		}
	}
	img, complete, cleanup, err := LoadUpload(context.Background(), Upload{SpecPath: "spec.yaml", Spec: uploadSpec, Files: files, Blobs: blobs}, DefaultLimits(), t.TempDir(), spec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	if !complete || img.Identity.Tag != onDisk.Identity.Tag {
		t.Errorf("complete %v, tag %s; want complete and %s", complete, img.Identity.Tag, onDisk.Identity.Tag)
	}
	if got, err := os.ReadFile(filepath.Join(img.Dir, "src", "main.py")); err != nil || string(got) != "print(1)\n" {
		t.Errorf("src/main.py = %q, %v", got, err)
	}
	info, err := os.Stat(filepath.Join(img.Dir, "src", "main.py"))
	if err != nil || info.Mode().Perm() != 0o755 {
		t.Errorf("src/main.py mode %v, %v; want 0755", info.Mode(), err)
	}
	if info, err := os.Stat(img.Dir); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("upload folder mode %v, %v; want 0700", info.Mode(), err)
	}
}

func TestUploadDirSpellingDoesNotChangeTheTag(t *testing.T) {
	real := t.TempDir()
	linked := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(real, linked); err != nil {
		t.Fatal(err)
	}
	var tags []string
	for _, dir := range []string{real, linked} {
		img, _, cleanup, err := LoadUpload(context.Background(), Upload{SpecPath: "spec.yaml", Spec: uploadSpec, Files: uploadFiles(true)}, DefaultLimits(), dir, spec.Options{})
		if err != nil {
			t.Fatal(err)
		}
		cleanup()
		tags = append(tags, img.Identity.Tag)
	}
	if tags[0] != tags[1] {
		t.Errorf("tags %v differ with the upload folder's spelling", tags)
	}
}

func TestUploadLimits(t *testing.T) {
	up := Upload{SpecPath: "spec.yaml", Spec: []byte("name: a\n"), Files: []File{{Path: "a", Kind: spec.KindFile, Content: make([]byte, 100)}, {Path: "b", Kind: spec.KindFile, Content: make([]byte, 100)}}}
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
	_, _, _, err := LoadUpload(context.Background(), Upload{SpecPath: "sub/spec.yaml", Spec: []byte("name: a\npackages: ['not a req!']\n"), Files: []File{{Path: "sub", Kind: spec.KindDir, Mode: 0o755}}}, DefaultLimits(), dir, spec.Options{})
	if err == nil || !strings.HasPrefix(err.Error(), "sub/spec.yaml:2: packages[0]") || strings.Contains(err.Error(), dir) {
		t.Errorf("err = %v, want it to name sub/spec.yaml:2 and packages[0] only", err)
	}
}

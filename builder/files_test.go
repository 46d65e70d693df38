package builder

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/tonistiigi/fsutil"

	"github.com/ispec-dev/ispec/spec"
)

// tarOf writes an FS as fsutil would send it and returns its headers.
func tarOf(t *testing.T, fs fsutil.FS) ([]*tar.Header, error) {
	t.Helper()
	var buf bytes.Buffer
	if err := fsutil.WriteTar(context.Background(), fs, &buf); err != nil {
		return nil, err
	}
	var hs []*tar.Header
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return hs, nil
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, tr); err != nil {
			t.Fatal(err)
		}
		hs = append(hs, h)
	}
}

func TestLocalMountsServeHashedEntries(t *testing.T) {
	files := map[string]string{
		"requirements.txt": "a==1\n",
		"bin/run.sh":       "#!/bin/sh\n",
		"conf/a.conf":      "a\n",
		"conf/a-b.conf":    "ab\n",
		"conf/a/x.conf":    "x\n",
		"conf/skip.tmp":    "ignored\n",
		"src/main.py":      "print()\n",
		"netrc":            "machine x\n",
	}
	img := loadSpec(t, fullSpec, files)
	// What an ignore rule leaves out of the tree is not served.
	tree := img.Copies[1]
	tree.Entries = slices.DeleteFunc(tree.Entries, func(e spec.Entry) bool { return e.Path == "skip.tmp" })
	m := LocalMounts(img)
	if got := len(m); got != 4 {
		t.Fatalf("%d local mounts, want 4 (requirements, 2 copies, source)", got)
	}

	hs, err := tarOf(t, m["copy-1"])
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, h := range hs {
		names = append(names, h.Name)
		if h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s owned by %d:%d, want 0:0", h.Name, h.Uid, h.Gid)
		}
	}
	want := []string{"a/", "a/x.conf", "a-b.conf", "a.conf"}
	if !slices.Equal(names, want) {
		t.Errorf("copy-1 serves %q, want %q (ignored files left out, walk order)", names, want)
	}

	hs, err = tarOf(t, m["copy-0"])
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 1 || hs[0].Name != singleFileName || hs[0].Mode&0o777 != 0o755 {
		t.Errorf("single-file copy serves %+v, want one file %q mode 0755", hs, singleFileName)
	}
	hs, err = tarOf(t, m["requirements"])
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 1 || hs[0].Name != "requirements.txt" || hs[0].Mode&0o777 != 0o644 {
		t.Errorf("requirements serves %+v", hs)
	}
}

// TestRequirementsMountServesIncludes: the requirements mount holds the
// requirements file and every file it includes, at their paths relative
// to the spec's folder, and nothing else of that folder.
func TestRequirementsMountServesIncludes(t *testing.T) {
	img := loadSpec(t, "name: x\nbase_image: "+testBase+"\nrequirements: reqs/app.txt\nsource_root: .\n", map[string]string{
		"reqs/app.txt":          "-r base.txt\n--constraint ../constraints/pins.txt\nispec-demo-a\n",
		"reqs/base.txt":         "-c ../constraints/pins.txt\nispec-demo-b\n",
		"constraints/pins.txt":  "ispec-demo-a==1.0.0\n",
		"reqs/unrelated.txt":    "not included\n",
		"secret-looking.txt":    "not included either\n",
		"constraints/other.txt": "not included\n",
	})
	hs, err := tarOf(t, LocalMounts(img)["requirements"])
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, h := range hs {
		names = append(names, h.Name)
	}
	want := []string{"constraints/", "constraints/pins.txt", "reqs/", "reqs/app.txt", "reqs/base.txt"}
	if !slices.Equal(names, want) {
		t.Errorf("requirements mount serves %q, want %q", names, want)
	}
}

func TestLocalMountsRefuseChangedFiles(t *testing.T) {
	img := loadSpec(t, fullSpec, fullFiles)
	// Same size, different bytes: only the digest can tell.
	if err := os.WriteFile(filepath.Join(img.Dir, "conf", "a.conf"), []byte("z\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := tarOf(t, LocalMounts(img)["copy-1"])
	if !errors.Is(err, ErrChanged) {
		t.Errorf("err = %v, want ErrChanged", err)
	}
}

func TestLessPath(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{"a", "a/b", true},
		{"a/b", "a-b", true},
		{"a-b", "a/b", false},
		{"a/b", "a/c", true},
		{"b", "a/z", false},
	} {
		if got := lessPath(tc.a, tc.b); got != tc.want {
			t.Errorf("lessPath(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

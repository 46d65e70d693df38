package spec

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// fixture writes files (path → content) into a fresh folder with fixed
// modes (0644 files, 0755 folders) so tags do not depend on the umask, and
// returns the folder.
func fixture(t testing.TB, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, content := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(full, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			err = os.Chmod(p, 0o755)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// load loads a spec file from a fixture folder and fails the test on error.
func load(t testing.TB, dir, file string) *Image {
	t.Helper()
	img, err := Load(context.Background(), filepath.Join(dir, file), Options{})
	if err != nil {
		t.Fatalf("Load(%s): %v", file, err)
	}
	return img
}

// loadErr loads a spec file that must be invalid and returns the error.
func loadErr(t testing.TB, dir, file string) error {
	t.Helper()
	_, err := Load(context.Background(), filepath.Join(dir, file), Options{})
	if err == nil {
		t.Fatalf("Load(%s): want an error, got none", file)
	}
	return err
}

// loadRoot loads a spec file (relative to dir) through an os.Root at dir,
// as a server loads an upload.
func loadRoot(t testing.TB, dir, file string) (*Image, error) {
	t.Helper()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	return Load(context.Background(), file, Options{Root: root})
}

// loadRootErr loads a spec file through a root that must be invalid and
// returns the error.
func loadRootErr(t testing.TB, dir, file string) error {
	t.Helper()
	_, err := loadRoot(t, dir, file)
	if err == nil {
		t.Fatalf("Load(%s) under a root: want an error, got none", file)
	}
	return err
}

package spec

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// lockFixture returns the files of a lock fixture under pylock/testdata
// with a spec that names its lock.
func lockFixture(t *testing.T, dir, lock, specBody string) map[string]string {
	t.Helper()
	files := map[string]string{"spec.yaml": specBody + "requirements: " + lock + "\n"}
	ents, err := os.ReadDir(filepath.Join("..", "pylock", "testdata", dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join("..", "pylock", "testdata", dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = string(data)
	}
	return files
}

// TestPythonLockFilesLoad: requirements naming uv.lock, poetry.lock or
// pylock.toml load, with each platform's pins (the arm64 image lacks the
// package a marker keeps to x86_64); the lock and the pyproject.toml
// beside it are hashed.
func TestPythonLockFilesLoad(t *testing.T) {
	for _, c := range []struct{ dir, lock string }{{"uv", "uv.lock"}, {"poetry", "poetry.lock"}, {"pep751", "pylock.toml"}} {
		t.Run(c.lock, func(t *testing.T) {
			files := lockFixture(t, c.dir, c.lock, "name: app\nplatform: [linux/amd64, linux/arm64]\n")
			img := load(t, fixture(t, files), "spec.yaml")
			amd, ok := img.PythonPins("linux/amd64")
			arm, _ := img.PythonPins("linux/arm64")
			if !ok || len(amd) != 4 || len(arm) != 3 {
				t.Fatalf("pins: amd64 %v, arm64 %v; want 4 and 3", amd, arm)
			}
			for _, p := range arm {
				if p.Name == "ispec-lk-amd" {
					t.Error("arm64 pins the package its marker keeps to x86_64")
				}
			}
			if !strings.Contains(string(img.Document), `"requirements":{"format":"`+c.lock+`","lock":"sha256:`) {
				t.Errorf("document lacks the lock: %s", img.Document)
			}
			tag := img.Identity.Tag
			// Another byte in the lock is another tag; so is another pyproject.
			for _, f := range []string{c.lock, "pyproject.toml"} {
				if _, ok := files[f]; !ok {
					continue
				}
				changed := map[string]string{}
				for k, v := range files {
					changed[k] = v
				}
				changed[f] += "\n# edited\n"
				if load(t, fixture(t, changed), "spec.yaml").Identity.Tag == tag {
					t.Errorf("editing %s kept the tag", f)
				}
			}
			// The same files through a server's upload root give the same tag.
			rooted, err := loadRoot(t, fixture(t, files), "spec.yaml")
			if err != nil || rooted.Identity.Tag != tag {
				t.Errorf("under a root: %v, tag %v; want %s", err, rooted, tag)
			}
		})
	}
}

// TestPythonLockErrorsNameFileLineAndPackage: a lock that cannot be
// installed as written is an invalid spec naming the lock, the line and
// the package.
func TestPythonLockErrorsNameFileLineAndPackage(t *testing.T) {
	dir := fixture(t, map[string]string{
		"spec.yaml": "name: a\nrequirements: deps/uv.lock\n",
		"deps/uv.lock": "version = 1\n\n[[package]]\nname = \"app\"\nversion = \"0.1\"\nsource = { virtual = \".\" }\ndependencies = [{ name = \"x\" }]\n\n" +
			"[[package]]\nname = \"x\"\nversion = \"1\"\nsource = { registry = \"https://i/simple\" }\nwheels = [{ url = \"https://i/x-1-py3-none-any.whl\" }]\n",
	})
	err := loadErr(t, dir, "spec.yaml")
	want := filepath.Join(dir, "deps", "uv.lock") + ":10: requirements: package x: x-1-py3-none-any.whl has no hash"
	if !strings.Contains(err.Error(), want) || !errors.Is(err, ErrInvalid) {
		t.Errorf("err = %q, want %q (invalid spec)", err, want)
	}
	dir = fixture(t, map[string]string{"spec.yaml": "name: a\nrequirements: uv.lock\n", "uv.lock": "version = [\n"})
	if err := loadErr(t, dir, "spec.yaml"); !strings.Contains(err.Error(), "uv.lock:") || !strings.Contains(err.Error(), "not valid TOML") {
		t.Errorf("broken TOML: %v", err)
	}
	dir = fixture(t, map[string]string{"spec.yaml": "name: a\nrequirements: pylock.toml\n"})
	if err := loadErr(t, dir, "spec.yaml"); !strings.Contains(err.Error(), "spec.yaml:2: requirements: pylock.toml does not exist") {
		t.Errorf("missing lock: %v", err)
	}
}

package spec

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ispec-dev/ispec/pylock"
)

// TestLockedPythonPinsTheSpec: a lock whose Python section was resolved
// for the spec's packages gives each platform its pins, moves the tag,
// leaves nothing floating; a changed package makes it stale.
func TestLockedPythonPinsTheSpec(t *testing.T) {
	dir := fixture(t, map[string]string{"spec.yaml": "name: app\npackages: [tensorflow, pillow]\nplatform: [linux/amd64, linux/arm64]\n"})
	file := filepath.Join(dir, "spec.yaml")
	bare, err := Load(context.Background(), file, Options{IgnoreLock: true})
	if err != nil {
		t.Fatal(err)
	}
	pins := []pylock.Pin{{Name: "pillow", Version: "11.0.0", File: "pillow-11.0.0-py3-none-any.whl", URL: "https://i/pillow-11.0.0-py3-none-any.whl", SHA256: strings.Repeat("a", 64)}}
	l := &Lock{Python: &LockedPython{Inputs: bare.PythonInputs(), Platforms: map[string]*LockedPlatform{"linux/amd64": LockedPackages(pins), "linux/arm64": LockedPackages(pins)}}}
	if err := WriteLock(file, l); err != nil {
		t.Fatal(err)
	}
	img := load(t, dir, "spec.yaml")
	got, ok := img.PythonPins("linux/arm64")
	if !ok || len(got) != 1 || got[0].URL != pins[0].URL || got[0].SHA256 != pins[0].SHA256 || got[0].Version != pins[0].Version {
		t.Fatalf("PythonPins = %+v, %v; want %+v", got, ok, pins)
	}
	if img.Identity.Tag == bare.Identity.Tag || !strings.Contains(string(img.Document), `"python_pinned":{"linux/amd64":"sha256:`) {
		t.Errorf("the lock does not change the tag: %s", img.Document)
	}
	if f := img.Floating(); len(f) != 0 || img.LockedError() != nil {
		t.Errorf("a locked spec floats: %v", f)
	}
	// Another pin is another tag.
	l.Python.Platforms["linux/arm64"].Packages[0].Version = "11.0.1"
	if err := WriteLock(file, l); err != nil {
		t.Fatal(err)
	}
	if load(t, dir, "spec.yaml").Identity.Tag == img.Identity.Tag {
		t.Error("another pin kept the tag")
	}
	if err := os.WriteFile(file, []byte("name: app\npackages: [tensorflow, pillow, scipy]\nplatform: [linux/amd64, linux/arm64]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := loadErr(t, dir, "spec.yaml"); !strings.Contains(err.Error(), "spec.yaml.lock: python.inputs") || !strings.Contains(err.Error(), "run ispec lock again") {
		t.Errorf("stale Python lock: %v", err)
	}
}

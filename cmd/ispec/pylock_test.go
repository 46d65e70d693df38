package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestLockedRefusesFloatingSpecs: build --locked (or ISPEC_LOCKED) refuses
// a spec whose Python requirements float with exit 2, naming each, before
// any registry or BuildKit is asked; validate and explain name them too,
// explain on stderr so that stdout stays the bytes hashed.
func TestLockedRefusesFloatingSpecs(t *testing.T) {
	isolate(t)
	t.Setenv("ISPEC_BUILDKIT_ADDR", "unix:///nonexistent/buildkitd.sock")
	dir := writeFiles(t, map[string]string{
		"spec.yaml": "name: app\nregistry: 127.0.0.1:1/none\npackages: [tensorflow, pillow, scipy==1.13.1]\n",
	})
	specFile := filepath.Join(dir, "spec.yaml")
	wants := []string{`packages[0]: "tensorflow" is not pinned`, `packages[1]: "pillow" is not pinned`, `packages[2]: "scipy==1.13.1" is pinned by version, not by hash`}

	out, errOut, code := run(t, "build", "--locked", specFile)
	if code != 2 {
		t.Fatalf("build --locked: exit %d, want 2\nstdout %s\nstderr %s", code, out, errOut)
	}
	for _, w := range append(wants, "spec.yaml:3", "lock file") {
		if !strings.Contains(errOut, w) {
			t.Errorf("build --locked stderr lacks %q:\n%s", w, errOut)
		}
	}
	t.Setenv("ISPEC_LOCKED", "true")
	if _, errOut, code := run(t, "build", specFile); code != 2 || !strings.Contains(errOut, wants[0]) {
		t.Errorf("ISPEC_LOCKED=true build: exit %d, want 2:\n%s", code, errOut)
	}
	t.Setenv("ISPEC_LOCKED", "")

	out, _, code = run(t, "validate", specFile)
	if code != 0 || !strings.HasPrefix(out, specFile+": valid\n") {
		t.Fatalf("validate: exit %d:\n%s", code, out)
	}
	for _, w := range wants {
		if !strings.Contains(out, "floats: ") || !strings.Contains(out, w) {
			t.Errorf("validate lacks %q:\n%s", w, out)
		}
	}
	out, errOut, code = run(t, "explain", specFile)
	if code != 0 || strings.Count(out, "\n") != 1 || !strings.HasPrefix(out, "{") {
		t.Errorf("explain stdout is not the document alone (exit %d):\n%s", code, out)
	}
	if !strings.Contains(errOut, "3 Python requirement(s) float") || !strings.Contains(errOut, wants[2]) {
		t.Errorf("explain stderr:\n%s", errOut)
	}
}

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDiffNamesFirstLayer: ispec diff of two layered specs names the
// first layer that differs; explain --files lists a layer's files.
func TestDiffNamesFirstLayer(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("wheels/w-1.0-py3-none-any.whl", "zip\n")
	a := write("a.yaml", "name: l\nlayers:\n  - packages: [torch==2.4.0]\n  - packages: [rich==13.0.0]\n  - python_wheels: wheels\n")
	b := write("b.yaml", "name: l\nlayers:\n  - packages: [torch==2.4.0]\n  - packages: [rich==13.8.0]\n  - python_wheels: wheels\n")
	out, _, code := run(t, "diff", a, b)
	if code != 1 || !strings.Contains(out, "spec.layers[1].packages") ||
		!strings.Contains(out, "first layer that differs: layers[1] (packages) differs in packages; it and the layers after it are built again") {
		t.Errorf("diff: exit %d, out %q", code, out)
	}
	out, _, code = run(t, "diff", "--json", a, b)
	if code != 1 || !strings.Contains(out, `"first_layer": {`) || !strings.Contains(out, `"index": 1`) {
		t.Errorf("diff --json: exit %d, out %q", code, out)
	}
	out, _, code = run(t, "explain", "--files", a)
	if code != 0 || !strings.Contains(out, `"encoding":"ispec.layers/v1"`) || !strings.Contains(out, "layers[2].python_wheels wheels sha256:") {
		t.Errorf("explain --files: exit %d, out %q", code, out)
	}
}

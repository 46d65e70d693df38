package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
)

// TestMigrationExamples runs the migration guides' worked examples through
// `ispec tag` (and validate): each tag is a valid reference, stable from
// run to run and from one config to another, and the one the guide shows.
func TestMigrationExamples(t *testing.T) {
	for _, tc := range []struct {
		doc, spec      string
		usesPythonBase bool
	}{
		{"docs/migrate-flyte-imagespec.md", "examples/migrate-flyte/images/training.yaml", true},
		{"docs/migrate-kubeflow.md", "examples/migrate-kubeflow/images/preprocess.yaml", false},
	} {
		t.Run(filepath.Base(tc.spec), func(t *testing.T) {
			isolate(t)
			path := filepath.Join("..", "..", tc.spec)
			out, errOut, code := run(t, "tag", path)
			if code != 0 {
				t.Fatalf("ispec tag %s: exit %d: %s", tc.spec, code, errOut)
			}
			ref := strings.TrimSpace(out)
			if _, err := name.NewTag(ref, name.StrictValidation); err != nil || !strings.Contains(ref, ":") {
				t.Fatalf("tag %q is not a valid reference: %v", ref, err)
			}
			// A default registry elsewhere changes nothing: the spec names
			// its own. A different Python base template changes the tag
			// of a spec that relies on it (its image changes), and only
			// of that one.
			t.Setenv("ISPEC_REGISTRY", "registry.example.com/other")
			if again, _, _ := run(t, "tag", path); strings.TrimSpace(again) != ref {
				t.Errorf("tag changed with the default registry: %s then %s", ref, again)
			}
			t.Setenv("ISPEC_PYTHON_BASE", "example.com/python:{python_version}")
			again, _, _ := run(t, "tag", path)
			if changed := strings.TrimSpace(again) != ref; changed != tc.usesPythonBase {
				t.Errorf("with another python-base the tag is %s (was %s); uses it: %v", again, ref, tc.usesPythonBase)
			}
			t.Setenv("ISPEC_PYTHON_BASE", "")
			again, _, _ = run(t, "tag", path)
			if strings.TrimSpace(again) != ref {
				t.Errorf("tag not stable: %s then %s", ref, again)
			}
			if _, errOut, code := run(t, "validate", path); code != 0 {
				t.Errorf("validate: exit %d: %s", code, errOut)
			}
			doc, err := os.ReadFile(filepath.Join("..", "..", tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			if want := "$ ispec tag " + tc.spec + "\n" + ref + "\n"; !strings.Contains(string(doc), want) {
				t.Errorf("%s does not show the example's tag:\n%s", tc.doc, want)
			}
		})
	}
}

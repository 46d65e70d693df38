package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ispec-dev/ispec/internal/pyindex"
)

// standinKFP is the kfp version the helper's stand-in models
// (integrations/kfp/tests/standin/kfp/__init__.py).
const standinKFP = "2.8.0"

// kfpPython runs one module of the kfp integration's Python tests.
func kfpPython(t *testing.T, module string, env ...string) {
	t.Helper()
	integrationPython(t, "kfp", module, env...)
}

// TestKFPHelperUnits runs the KFP helper's unit tests (test_units.py):
// the spec it writes from dsl.component's arguments, the arguments it
// gives dsl.component back, the argv it runs ispec with, errors.
func TestKFPHelperUnits(t *testing.T) {
	kfpPython(t, "test_units")
}

// TestKFPHelper runs the helper's end-to-end test (test_e2e.py) with
// this tree's ispec on PATH: a component's image built once, a second
// call building nothing, the base image ref@digest.
func TestKFPHelper(t *testing.T) {
	env := e2e(t)
	bin, err := ispecBinary()
	if err != nil {
		t.Fatalf("building ispec: %v", err)
	}
	if _, err := pyindex.WriteWheel(env.IndexWheels, "kfp", standinKFP, map[string]string{
		"kfp/__init__.py": "__version__ = \"" + standinKFP + "\"\n",
	}); err != nil {
		t.Fatal(err)
	}
	kfpPython(t, "test_e2e",
		"PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"ISPEC_TEST_REGISTRY="+env.Registry,
		"ISPEC_TEST_BASE_PYTHON="+env.BasePython,
		"ISPEC_TEST_PYPI_INDEX="+env.IndexURL,
		"ISPEC_TEST_RUN="+fmt.Sprint(time.Now().UnixNano()),
		"BUILDKIT_HOST="+env.BuildkitHost,
	)
}

package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ispec-dev/ispec/internal/pyindex"
	"github.com/ispec-dev/ispec/internal/testenv"
)

// standinKFP is the kfp version the helper's stand-in models
// (integrations/kfp/tests/standin/kfp/__init__.py).
const standinKFP = "2.8.0"

// kfpPython runs one module of the KFP helper's Python tests
// (integrations/kfp/tests) with Debian's python3 against the stand-in of
// kfp, with env added, and fails when a Python test fails or skips.
func kfpPython(t *testing.T, module string, env ...string) {
	t.Helper()
	python := "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		testenv.Missing(t, "%s: %v", python, err)
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	helper := filepath.Join(root, "integrations", "kfp")
	tests := filepath.Join(helper, "tests")
	cmd := exec.Command(python, "-W", "error::ResourceWarning", "-m", "unittest", "-v", module)
	cmd.Dir = tests
	cmd.Env = append(os.Environ(),
		"PYTHONPATH="+filepath.Join(tests, "standin")+string(os.PathListSeparator)+filepath.Join(helper, "src"),
		"PYTHONDONTWRITEBYTECODE=1",
		"CI=true", // nothing may skip
	)
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python tests failed: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "skipped") {
		t.Errorf("python tests skipped:\n%s", out)
	}
	t.Logf("%s", out)
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

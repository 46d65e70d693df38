package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ispec-dev/ispec/internal/pyindex"
	"github.com/ispec-dev/ispec/internal/testenv"
)

// standinFlytekit is the flytekit version the plugin's stand-in models
// (integrations/flytekit/tests/standin/flytekit/__init__.py).
const standinFlytekit = "1.16.24"

// flytekitPython runs one module of the flytekit plugin's Python tests
// (integrations/flytekit/tests) with Debian's python3 against the
// stand-in of flytekit (flytekit cannot be installed here: no Python
// package index), with env added, and fails the test when a Python test
// fails or skips.
func flytekitPython(t *testing.T, module string, env ...string) {
	t.Helper()
	python := "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		testenv.Missing(t, "%s: %v", python, err)
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	plugin := filepath.Join(root, "integrations", "flytekit")
	tests := filepath.Join(plugin, "tests")
	cmd := exec.Command(python, "-W", "error::ResourceWarning", "-m", "unittest", "-v", module)
	cmd.Dir = tests
	cmd.Env = append(os.Environ(),
		"PYTHONPATH="+filepath.Join(tests, "standin")+string(os.PathListSeparator)+filepath.Join(plugin, "src"),
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

// TestFlytekitPluginUnits runs the plugin's unit tests (test_units.py):
// its registration and priority in a new process, the spec it writes
// (paths relative to the project, flytekit pinned to the caller's
// version), and what it does with ispec's output (a fake ispec): the name
// it records, progress passed on as it comes, errors.
func TestFlytekitPluginUnits(t *testing.T) {
	flytekitPython(t, "test_units")
}

// TestFlytekitPlugin runs the plugin's end-to-end tests (test_e2e.py)
// with this tree's ispec on PATH, on the real BuildKit, registry and
// index: ImageSpec(builder="ispec") registered as pyflyte registers it,
// twice in two processes, each getting an image that exists.
func TestFlytekitPlugin(t *testing.T) {
	env := e2e(t)
	bin, err := ispecBinary()
	if err != nil {
		t.Fatalf("building ispec: %v", err)
	}
	// The flytekit the plugin adds to a spec that names none, as the
	// stand-in's version: an empty package of that name.
	if _, err := pyindex.WriteWheel(env.IndexWheels, "flytekit", standinFlytekit, map[string]string{
		"flytekit/__init__.py": "__version__ = \"" + standinFlytekit + "\"\n",
	}); err != nil {
		t.Fatal(err)
	}
	flytekitPython(t, "test_e2e",
		"PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"ISPEC_TEST_REGISTRY="+env.Registry,
		"ISPEC_TEST_BASE_BUSYBOX="+env.BaseBusybox,
		"ISPEC_TEST_BASE_PYTHON="+env.BasePython,
		"ISPEC_TEST_PYPI_INDEX="+env.IndexURL,
		"BUILDKIT_HOST="+env.BuildkitHost,
	)
}

package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ispec-dev/ispec/internal/pyindex"
)

// standinFlytekit is the flytekit version the plugin's stand-in models
// (integrations/flytekit/tests/standin/flytekit/__init__.py).
const standinFlytekit = "1.16.24"

// flytekitPython runs one module of the flytekit integration's Python tests.
func flytekitPython(t *testing.T, module string, env ...string) {
	t.Helper()
	integrationPython(t, "flytekit", module, env...)
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

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// flytePython runs one module of the flyte-sdk plugin's Python tests.
func flytePython(t *testing.T, module string, env ...string) {
	t.Helper()
	integrationPython(t, "flyte", module, env...)
}

// TestFlytePluginUnits runs the flyte-sdk plugin's unit tests
// (test_units.py) against the stand-in of flyte-sdk: each layer kind as
// its spec item, what is refused, the builder's and checker's calls to a
// fake ispec, the plugin loaded from its entry point.
func TestFlytePluginUnits(t *testing.T) {
	flytePython(t, "test_units")
}

// TestFlytePlugin runs the plugin's end-to-end tests (test_e2e.py) with
// this tree's ispec on PATH, on the real BuildKit, registry and index: a
// flyte.Image with a layer of every kind built through flyte-sdk's build
// engine, read back from the registry, found the second time; a light
// layer's change that keeps every heavy layer; an image built through
// ispec serve; a uv layer; an unreachable registry.
func TestFlytePlugin(t *testing.T) {
	env := e2e(t)
	bin, err := ispecBinary()
	if err != nil {
		t.Fatalf("building ispec: %v", err)
	}
	srv := startServe(t)
	flytePython(t, "test_e2e",
		"PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"ISPEC_TEST_REGISTRY="+env.Registry,
		"ISPEC_TEST_BASE_PYTHON="+env.BasePython,
		"ISPEC_TEST_PYPI_INDEX="+env.IndexURL,
		"ISPEC_TEST_RUN="+fmt.Sprint(time.Now().UnixNano()),
		"ISPEC_TEST_SERVER="+srv.addr,
		"BUILDKIT_HOST="+env.BuildkitHost,
	)
}

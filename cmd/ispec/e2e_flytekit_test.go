package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ispec-dev/ispec/internal/testenv"
)

// TestFlytekitPlugin runs the flytekit plugin's Python tests
// (integrations/flytekit/tests) with Debian's python3 against a stand-in of
// flytekit's builder classes (flytekit cannot be installed here: no
// Python package index) and this tree's ispec on PATH: ImageSpec(builder=
// "ispec") built end to end on the real BuildKit and registry.
func TestFlytekitPlugin(t *testing.T) {
	env := e2e(t)
	python := "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		testenv.Missing(t, "%s: %v", python, err)
	}
	bin, err := ispecBinary()
	if err != nil {
		t.Fatalf("building ispec: %v", err)
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	plugin := filepath.Join(root, "integrations", "flytekit")
	cmd := exec.Command(python, "-m", "unittest", "discover", "-v", "-s", filepath.Join(plugin, "tests"), "-t", filepath.Join(plugin, "tests"))
	cmd.Dir = t.TempDir()
	cmd.Env = append(os.Environ(),
		"PATH="+filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"PYTHONPATH="+filepath.Join(plugin, "tests", "standin")+string(os.PathListSeparator)+filepath.Join(plugin, "src"),
		"PYTHONDONTWRITEBYTECODE=1",
		"ISPEC_TEST_REGISTRY="+env.Registry,
		"ISPEC_TEST_BASE_BUSYBOX="+env.BaseBusybox,
		"BUILDKIT_HOST="+env.BuildkitHost,
		"CI=true", // the environment is here: nothing may skip
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python tests failed: %v\n%s", err, out)
	}
	if strings.Contains(string(out), "skipped") {
		t.Errorf("python tests skipped:\n%s", out)
	}
	t.Logf("%s", out)
}

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ispec-dev/ispec/internal/testenv"
)

// integrationPython runs one module of the Python tests of
// integrations/NAME (its tests folder) with Debian's python3 against the
// stand-ins in tests/standin (the real packages cannot be installed here:
// no Python package index), with env added, and fails the test when a
// Python test fails or skips.
func integrationPython(t *testing.T, name, module string, env ...string) {
	t.Helper()
	python := "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		testenv.Missing(t, "%s: %v", python, err)
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "integrations", name)
	tests := filepath.Join(dir, "tests")
	cmd := exec.Command(python, "-W", "error::ResourceWarning", "-m", "unittest", "-v", module)
	cmd.Dir = tests
	cmd.Env = append(os.Environ(),
		"PYTHONPATH="+filepath.Join(tests, "standin")+string(os.PathListSeparator)+filepath.Join(dir, "src"),
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

package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// BuildctlPath returns the buildctl binary to drive the environment's
// daemon with: the one the environment names, else `buildctl` on PATH. It
// fails the test when there is none.
func (e *Env) BuildctlPath(t testing.TB) string {
	t.Helper()
	if e.Buildctl != "" {
		if fi, err := os.Stat(e.Buildctl); err == nil && fi.Mode().IsRegular() {
			return e.Buildctl
		}
	}
	if p, err := exec.LookPath("buildctl"); err == nil {
		return p
	}
	t.Fatalf("no buildctl: the environment names %q and there is none on PATH; run `make env-up`", e.Buildctl)
	return ""
}

// buildctlNextToDaemon returns the buildctl in the directory of the running
// buildkitd (its pid is in the state directory), or "".
func buildctlNextToDaemon(stateDir string) string {
	data, err := os.ReadFile(filepath.Join(stateDir, "buildkitd.pid"))
	if err != nil {
		return ""
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return ""
	}
	exe, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "exe"))
	if err != nil {
		return ""
	}
	p := filepath.Join(filepath.Dir(strings.TrimSuffix(exe, " (deleted)")), "buildctl")
	if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
		return ""
	}
	return p
}

// PruneAll empties the build cache of the daemon at host (`buildctl
// prune --all`), as a new CI runner or pool pod starts with none. Never
// point it at the shared environment's daemon: use one of StartBuildkitd.
func (e *Env) PruneAll(t testing.TB, host string) {
	t.Helper()
	if host == e.BuildkitHost {
		t.Fatal("PruneAll: refusing to prune the shared environment's daemon; start one with StartBuildkitd")
	}
	out, err := exec.Command(e.BuildctlPath(t), "--addr", host, "prune", "--all").CombinedOutput()
	if err != nil {
		t.Fatalf("buildctl prune --all: %v\n%s", err, out)
	}
}

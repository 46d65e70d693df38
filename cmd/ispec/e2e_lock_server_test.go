package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ispec-dev/ispec/internal/pyindex"
	"github.com/ispec-dev/ispec/spec"
)

// TestE2ELockThroughServer: `ispec lock --server` of a spec with an
// unpinned package (its requirements file including another) writes the
// lock a local `ispec lock` of the same spec writes, byte for byte, and
// the same pylock.toml; after a newer version is published, `lock --check
// --server` exits 1 naming the package locked and available, as the local
// check does; `--upgrade-package` through the server moves it as the
// local one does; the server address also comes from ISPEC_SERVER.
func TestE2ELockThroughServer(t *testing.T) {
	env := e2e(t)
	var core, util10, util11, fast pyindex.Wheel
	for _, w := range pyindex.LockDemo {
		switch w.Name + " " + w.Version {
		case "ispec-lk-core 1.0.0":
			core = w
		case "ispec-lk-util 1.0.0":
			util10 = w
		case "ispec-lk-util 1.1.0":
			util11 = w
		case "ispec-lk-fast 0.5.0":
			fast = w
		}
	}
	index, wheels := lockIndex(t, core, util10, fast)
	srv := startServe(t)
	files := map[string]string{
		"spec.yaml": fmt.Sprintf("name: lockrpc\nregistry: %s/e2e-lockrpc-%d\nbase_image: %s\npip_index: %s/simple\nrequirements: reqs.txt\n",
			env.Registry, time.Now().UnixNano(), env.BasePython, index),
		"reqs.txt": "-r base.txt\n",
		"base.txt": "ispec-lk-core[fast]\n",
	}
	local, remote := filepath.Join(writeFiles(t, files), "spec.yaml"), filepath.Join(writeFiles(t, files), "spec.yaml")
	localPy, remotePy := filepath.Join(filepath.Dir(local), "pylock.toml"), filepath.Join(filepath.Dir(remote), "pylock.toml")

	if out, errOut, code := runProc(t, "lock", "--pylock", localPy, local); code != 0 {
		t.Fatalf("local lock: exit %d\n%s\n%s", code, out, tail(errOut, 40))
	}
	out, errOut, code := runProc(t, "lock", "--server", srv.addr, "--pylock", remotePy, remote)
	if code != 0 {
		t.Fatalf("lock --server: exit %d\n%s\n%s\nserver:\n%s", code, out, tail(errOut, 40), tail(srv.log.String(), 20))
	}
	if want := spec.LockPath(remote) + "\n" + remotePy + "\n"; out != want {
		t.Errorf("lock --server printed %q, want %q", out, want)
	}
	sameFile(t, "the lock file", spec.LockPath(local), spec.LockPath(remote))
	sameFile(t, "the pylock.toml", localPy, remotePy)
	l, err := spec.ReadLock(remote)
	if err != nil || l.Python == nil || len(l.Python.Platforms["linux/amd64"].Packages) != 3 {
		t.Fatalf("lock file: %+v, %v; want three Python packages for linux/amd64", l, err)
	}
	if info, err := os.Stat(spec.LockPath(remote)); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("lock file mode: %v, %v; want 0600 as a local lock", info.Mode(), err)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(remote), ".*tmp*")); len(left) > 0 {
		t.Errorf("temporary files left beside the spec: %v", left)
	}

	if _, err := pyindex.Write(wheels, util11); err != nil {
		t.Fatal(err)
	}
	const drift = "python (linux/amd64): ispec-lk-util 1.0.0 locked, 1.1.0 available"
	out, errOut, code = runProc(t, "lock", "--check", "--server", srv.addr, remote)
	if code != exitAbsent || !strings.Contains(out, spec.LockPath(remote)+": "+drift) {
		t.Errorf("lock --check --server: exit %d, stdout %q, stderr %s; want 1 naming util 1.0.0 and 1.1.0", code, out, tail(errOut, 20))
	}
	localOut, _, localCode := runProc(t, "lock", "--check", local)
	if localCode != code || strings.ReplaceAll(localOut, local, "SPEC") != strings.ReplaceAll(out, remote, "SPEC") {
		t.Errorf("lock --check: local exit %d %q, through the server exit %d %q; want the same", localCode, localOut, code, out)
	}
	sameFile(t, "the lock file after --check", spec.LockPath(local), spec.LockPath(remote))

	if out, errOut, code := runProc(t, "lock", "--upgrade-package", "ispec-lk-util", local); code != 0 {
		t.Fatalf("local lock --upgrade-package: exit %d\n%s\n%s", code, out, tail(errOut, 40))
	}
	t.Setenv("ISPEC_SERVER", srv.addr)
	if out, errOut, code := runProc(t, "lock", "--upgrade-package", "ispec-lk-util", remote); code != 0 {
		t.Fatalf("lock --upgrade-package with ISPEC_SERVER: exit %d\n%s\n%s", code, out, tail(errOut, 40))
	}
	sameFile(t, "the lock file after --upgrade-package", spec.LockPath(local), spec.LockPath(remote))
	if l, err := spec.ReadLock(remote); err != nil || !strings.Contains(fmt.Sprint(l.Python.Platforms["linux/amd64"].Pins()), "1.1.0") {
		t.Errorf("after --upgrade-package through the server: %v, want util 1.1.0 pinned", err)
	}
	if out, errOut, code := runProc(t, "lock", "--check", remote); code != 0 || out != "" {
		t.Errorf("lock --check after the upgrade: exit %d %q %s; want 0 and nothing", code, out, tail(errOut, 20))
	}
}

// sameFile fails the test unless the files a and b hold the same bytes.
func sameFile(t *testing.T, what, a, b string) {
	t.Helper()
	da, err := os.ReadFile(a)
	if err != nil {
		t.Fatal(err)
	}
	db, err := os.ReadFile(b)
	if err != nil {
		t.Fatal(err)
	}
	if string(da) != string(db) {
		t.Errorf("%s differs: local\n%s\nthrough the server\n%s", what, da, db)
	}
}

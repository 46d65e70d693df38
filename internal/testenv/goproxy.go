package testenv

import (
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// ModuleProxy serves the host's Go module cache as a Go module proxy on
// loopback (the cache's download folder has the proxy protocol's layout)
// and returns its URL, e.g. "http://127.0.0.1:41234". It first runs
// `go mod download` in the repository, so the cache holds every module the
// main module needs. Builds in the environment's BuildKit share the host's
// network, so a Dockerfile's `go mod download` can use it with no access to
// the internet (or to a proxy behind TLS interception the build cannot
// verify). The server stops when the test ends.
func ModuleProxy(t testing.TB) string {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "mod", "download")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go mod download: %v\n%s", err, out)
	}
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		t.Fatalf("go env GOMODCACHE: %v", err)
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "cache", "download")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.FileServer(http.Dir(dir))}
	go srv.Serve(ln) //nolint:errcheck // ends with Close below
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String()
}

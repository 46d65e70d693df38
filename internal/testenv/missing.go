package testenv

import (
	"fmt"
	"os"
	"strconv"
	"testing"
)

// Missing ends a test whose prerequisite (a service, a binary, the
// development environment) is missing: a skip with msg on a developer's
// machine, a failure when CI is set to a true value, because CI must run
// every test.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
		t.Fatal(msg)
		return
	}
	t.Skip(msg)
}

// External marks a test that needs something outside the Go toolchain
// (BuildKit, a registry, redis-server, Debian's python3): under
// `go test -short` (`make check`, the fast loop) it is skipped on
// purpose; `make test` runs it.
func External(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs the development environment or an external tool: -short runs unit tests only (make test runs everything)")
	}
}

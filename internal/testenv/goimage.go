package testenv

import (
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/ispec-dev/ispec/internal/fixture"
)

// GoImage returns a Go toolchain image in the environment's registry: the
// Go that runs the tests (its GOROOT at /usr/local/go, on PATH) on top of
// the Debian Python fixture, which has CA certificates. It stands in for
// the public golang images, which the test machines cannot reach. The
// image is pushed on first use and kept: later calls only compare its key
// (a hash of the toolchain's files and the base's digest).
func (e *Env) GoImage(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	goroot := strings.TrimSpace(string(out))
	mk, sum, err := fixture.DirLayer(goroot, "usr/local/go", fixture.GoExclude())
	if err != nil {
		t.Fatalf("Go toolchain layer: %v", err)
	}
	ref := e.Registry + "/fixtures/golang:bookworm"
	var log strings.Builder
	_, err = fixture.Push(fixture.Image{
		Ref: ref, Base: e.BasePython, Arch: runtime.GOARCH,
		Env:   []string{"PATH=/usr/local/go/bin:" + fixture.DefaultPath, "GOTOOLCHAIN=local"},
		Layer: mk, InputSHA: sum, Insecure: true,
	}, &log)
	if err != nil {
		t.Fatalf("pushing the Go toolchain fixture: %v", err)
	}
	t.Log(strings.TrimSpace(log.String()))
	return ref
}

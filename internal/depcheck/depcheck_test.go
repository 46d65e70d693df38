// Package depcheck holds a test that fences which packages the core
// libraries may import, so that configuration stays at the edge (cmd) and
// the spec package stays free of network code.
package depcheck

import (
	"os/exec"
	"strings"
	"testing"
)

// deps lists the packages pkg depends on, directly or not.
func deps(t *testing.T, pkg string) []string {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	return strings.Fields(string(out))
}

func TestCoreStaysFreeOfConfiguration(t *testing.T) {
	forbidden := []string{"github.com/spf13/viper", "github.com/spf13/cobra", "github.com/spf13/pflag"}
	for _, pkg := range []string{"spec", "cache", "builder"} {
		for _, d := range deps(t, "github.com/ispec-dev/ispec/"+pkg) {
			for _, f := range forbidden {
				if d == f || strings.HasPrefix(d, f+"/") {
					t.Errorf("%s depends on %s: configuration belongs in cmd/ispec", pkg, d)
				}
			}
		}
	}
}

func TestSpecDoesNoNetworkIO(t *testing.T) {
	for _, d := range deps(t, "github.com/ispec-dev/ispec/spec") {
		switch {
		case d == "github.com/moby/buildkit/frontend/dockerfile/shell":
			// Dockerfile's word lexer, pure string processing: spec checks
			// env values with it.
		case d == "net/http", strings.HasPrefix(d, "github.com/google/go-containerregistry/pkg/v1/remote"),
			strings.HasPrefix(d, "github.com/moby/buildkit"), strings.HasPrefix(d, "github.com/ispec-dev/ispec/cache"):
			t.Errorf("spec depends on %s; it must not reach the network", d)
		}
	}
}

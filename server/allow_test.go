package server

import "testing"

// TestRegistryListAllows: an entry allows its registry, or the
// repositories under its path; Docker Hub matches whichever name it has.
func TestRegistryListAllows(t *testing.T) {
	l, err := parseRegistries([]string{"Registry.lan:5000", "ghcr.io/my-org/", "index.docker.io/library"})
	if err != nil {
		t.Fatal(err)
	}
	for repo, want := range map[string]bool{
		"registry.lan:5000/a/b":        true,
		"REGISTRY.LAN:5000/x":          true,
		"registry.lan:5001/x":          false,
		"registry.lan/x":               false,
		"ghcr.io/my-org/app":           true,
		"ghcr.io/my-org":               true,
		"ghcr.io/my-org-evil/app":      false,
		"ghcr.io/other/app":            false,
		"docker.io/library/debian":     true,
		"index.docker.io/library/x":    true,
		"docker.io/someone/debian":     false,
		"127.0.0.1:5000/e2e/x":         false,
		"registry.lan:5000.evil.com/x": false,
	} {
		if got := l.allows(repo); got != want {
			t.Errorf("allows(%s) = %v, want %v", repo, got, want)
		}
	}
	for _, bad := range []string{"", "https://ghcr.io"} {
		if _, err := parseRegistries([]string{bad}); err == nil {
			t.Errorf("parseRegistries(%q): want an error", bad)
		}
	}
}

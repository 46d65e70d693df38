package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// TestCLIReferenceIsCurrent regenerates the CLI reference into a temporary
// folder and compares it with docs/cli: run `make docs` when it fails.
func TestCLIReferenceIsCurrent(t *testing.T) {
	tmp := t.TempDir()
	if err := genCLIDocs(newRootCmd(), tmp); err != nil {
		t.Fatal(err)
	}
	committed := filepath.Join("..", "..", "docs", "cli")
	names := func(dir string) []string {
		ps, _ := filepath.Glob(filepath.Join(dir, "ispec*.md"))
		for i, p := range ps {
			ps[i] = filepath.Base(p)
		}
		return ps
	}
	got, want := names(committed), names(tmp)
	if !slices.Equal(got, want) {
		t.Fatalf("docs/cli holds %v, the commands make %v: run make docs", got, want)
	}
	for _, n := range want {
		a, _ := os.ReadFile(filepath.Join(committed, n))
		b, _ := os.ReadFile(filepath.Join(tmp, n))
		if string(a) != string(b) {
			t.Errorf("docs/cli/%s is stale: run make docs", n)
		}
	}
	// The reference covers what users look for.
	build, _ := os.ReadFile(filepath.Join(tmp, "ispec_build.md"))
	for _, s := range []string{"--jobs", "--json-out", "--image-args", "## Flags of every command", "--cache-dir"} {
		if !strings.Contains(string(build), s) {
			t.Errorf("ispec_build.md does not mention %s", s)
		}
	}
	if _, err := os.Stat(filepath.Join(tmp, "ispec_gen-cli-docs.md")); err == nil {
		t.Error("the hidden gen-cli-docs command is documented")
	}
}

// TestGenCLIDocsRemovesStale: a page of a command that is gone is removed.
func TestGenCLIDocsRemovesStale(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "ispec_gone.md"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(dir, "README.md"), []byte("kept"), 0o644)
	if err := genCLIDocs(newRootCmd(), dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "ispec_gone.md")); err == nil {
		t.Error("stale page kept")
	}
	if _, err := os.Stat(filepath.Join(dir, "README.md")); err != nil {
		t.Error("a file not generated was removed")
	}
}

// TestConfigurationReferenceCoversEverySetting: docs/configuration.md
// names every config file key and every flag of every command.
func TestConfigurationReferenceCoversEverySetting(t *testing.T) {
	dt, err := os.ReadFile(filepath.Join("..", "..", "docs", "configuration.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(dt)
	for _, k := range configKeys() {
		if !strings.Contains(doc, "| `"+k+"` |") {
			t.Errorf("config key %s is not in the table of config file keys", k)
		}
		env := "ISPEC_" + strings.ToUpper(strings.ReplaceAll(k, "-", "_"))
		if !strings.Contains(doc, env) {
			t.Errorf("%s is not documented", env)
		}
	}
	root := newRootCmd()
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		c.LocalFlags().VisitAll(func(f *pflag.Flag) {
			if !strings.Contains(doc, "--"+f.Name) {
				t.Errorf("%s --%s is not in docs/configuration.md", c.CommandPath(), f.Name)
			}
		})
		for _, sub := range c.Commands() {
			if sub.IsAvailableCommand() {
				walk(sub)
			}
		}
	}
	walk(root)
}

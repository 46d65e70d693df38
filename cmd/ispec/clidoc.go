package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
)

// newGenDocsCmd is the hidden command `make docs` runs: it writes the CLI
// reference (docs/cli) from the commands themselves.
func newGenDocsCmd() *cobra.Command {
	return &cobra.Command{
		Use:    "gen-cli-docs DIR",
		Short:  "Write the CLI reference, one Markdown file per command, into DIR",
		Hidden: true,
		Args:   exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return genCLIDocs(cmd.Root(), args[0])
		},
	}
}

// genCLIDocs writes root's reference into dir: a Markdown file per
// available command (ispec.md, ispec_build.md, ...), and removes files of
// commands that no longer exist. The output depends on the commands only,
// not on the machine or the date, so a test can tell when it is stale.
func genCLIDocs(root *cobra.Command, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	// The commands and flags cobra adds when a command runs.
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	want := map[string][]byte{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if !c.IsAvailableCommand() && c != root {
			return
		}
		c.InitDefaultHelpFlag()
		want[docFile(c)] = commandDoc(c)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	old, _ := filepath.Glob(filepath.Join(dir, "ispec*.md"))
	for _, p := range old {
		if _, ok := want[filepath.Base(p)]; !ok {
			if err := os.Remove(p); err != nil {
				return err
			}
		}
	}
	for name, dt := range want {
		if err := os.WriteFile(filepath.Join(dir, name), dt, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// docFile is a command's file name: its path joined with _.
func docFile(c *cobra.Command) string {
	return strings.ReplaceAll(c.CommandPath(), " ", "_") + ".md"
}

// commandDoc is one command's page.
func commandDoc(c *cobra.Command) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "# %s\n\n%s\n\n", c.CommandPath(), c.Short)
	fmt.Fprintf(&b, "```\n%s\n```\n\n", c.UseLine())
	if c.Long != "" {
		fmt.Fprintf(&b, "```text\n%s\n```\n\n", strings.TrimSpace(c.Long))
	}
	if f := c.NonInheritedFlags(); f.HasAvailableFlags() {
		fmt.Fprintf(&b, "## Flags\n\n```\n%s```\n\n", f.FlagUsages())
	}
	if f := c.InheritedFlags(); f.HasAvailableFlags() {
		fmt.Fprintf(&b, "## Flags of every command\n\n```\n%s```\n\n", f.FlagUsages())
	}
	var subs []string
	for _, sub := range c.Commands() {
		if sub.IsAvailableCommand() {
			subs = append(subs, fmt.Sprintf("- [%s](%s): %s", sub.CommandPath(), docFile(sub), sub.Short))
		}
	}
	if len(subs) > 0 {
		fmt.Fprintf(&b, "## Commands\n\n%s\n\n", strings.Join(subs, "\n"))
	}
	if p := c.Parent(); p != nil {
		fmt.Fprintf(&b, "See also: [%s](%s).\n", p.CommandPath(), docFile(p))
	}
	return append(bytes.TrimRight(b.Bytes(), "\n"), '\n')
}

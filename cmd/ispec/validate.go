package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/ispec-dev/ispec/spec"
)

func newValidateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate SPEC...",
		Short: "Check spec files and the files they reference",
		Long: `Check each spec file: its syntax, every field's type and grammar, and
that the files it references exist. Every problem is reported with the
file, line, field and what was expected. Exit 2 when any spec is invalid.
Each Python requirement that floats (pip resolves it when the image is
built: packages, requirements lines without == and --hash) is named
under its spec; build --locked refuses those specs.`,
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, imgs, err := loadSpecs(cmd, args)
			if err != nil {
				return err
			}
			for i, p := range args {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: valid\n", p)
				printFloating(cmd.OutOrStdout(), imgs[i])
			}
			return nil
		},
	}
}

// printFloating names each Python requirement of img that floats, one
// indented line each.
func printFloating(w io.Writer, img *spec.Image) {
	for _, f := range img.Floating() {
		fmt.Fprintf(w, "  floats: %s\n", f)
	}
}

package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newValidateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate SPEC...",
		Short: "Check spec files and the files they reference",
		Long: `Check each spec file: its syntax, every field's type and grammar, and
that the files it references exist. Every problem is reported with the
file, line, field and what was expected. Exit 2 when any spec is invalid.`,
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, _, err := loadSpecs(cmd, args); err != nil {
				return err
			}
			for _, p := range args {
				fmt.Fprintf(cmd.OutOrStdout(), "%s: valid\n", p)
			}
			return nil
		},
	}
}

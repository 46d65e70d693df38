package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/ispec-dev/ispec/spec"
)

func newDiffCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "diff A B",
		Short: "Name the inputs that make two specs' tags differ",
		Long: `Compare what was hashed for two spec files and name each input that
differs (with the files that changed inside copied trees), then say
whether the tags differ. For specs with layers it also names the first
layer that differs: the layers before it are reused. Exit 0 when the tags are the same, 1 when they
differ.`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, imgs, err := loadSpecs(cmd, args)
			if err != nil {
				return err
			}
			a, b := imgs[0], imgs[1]
			diffs := spec.Diff(a, b)
			same := a.Identity.Tag == b.Identity.Tag
			out := cmd.OutOrStdout()
			if asJSON {
				if diffs == nil {
					diffs = []spec.Difference{}
				}
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				res := map[string]any{"a": a.Identity, "b": b.Identity, "same_tag": same, "differences": diffs}
				if ld, ok := spec.FirstLayerDifference(a, b); ok {
					res["first_layer"] = ld
				}
				if err := enc.Encode(res); err != nil {
					return err
				}
			} else {
				for _, d := range diffs {
					fmt.Fprintf(out, "%s:\n  a: %s\n  b: %s\n", d.Field, orAbsent(d.A), orAbsent(d.B))
					if d.Detail != "" {
						fmt.Fprintf(out, "  changed: %s\n", printable(d.Detail))
					}
				}
				if ld, ok := spec.FirstLayerDifference(a, b); ok {
					fmt.Fprintf(out, "first layer that differs: %s; it and the layers after it are built again\n", ld)
				}
				if same {
					fmt.Fprintf(out, "tags are the same: %s\n", a.Identity.Tag)
				} else {
					fmt.Fprintf(out, "tags differ: %s vs %s\n", a.Identity.Tag, b.Identity.Tag)
				}
			}
			if !same {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the differences as JSON")
	return cmd
}

func orAbsent(s string) string {
	if s == "" {
		return "(absent)"
	}
	return s
}

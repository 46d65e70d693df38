package main

import (
	"encoding/json"
	"fmt"
	"io"

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
layer that differs: the layers before it are reused. Exit 0 when the tags
are the same, 1 when they differ.`,
		Args: exactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, imgs, err := loadSpecs(cmd, args)
			if err != nil {
				return err
			}
			a, b := imgs[0], imgs[1]
			same := a.Identity.Tag == b.Identity.Tag
			if err := renderDiff(cmd.OutOrStdout(), a, b, spec.Diff(a, b), asJSON); err != nil {
				return err
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

// renderDiff prints the differences between a and b and whether their
// tags differ, as text or JSON.
func renderDiff(out io.Writer, a, b *spec.Image, diffs []spec.Difference, asJSON bool) error {
	same := a.Identity.Tag == b.Identity.Tag
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
		return enc.Encode(res)
	}
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
	return nil
}

func orAbsent(s string) string {
	if s == "" {
		return "(absent)"
	}
	return s
}

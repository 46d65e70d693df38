package main

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"
)

func newTagCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "tag SPEC...",
		Short: "Print each spec's content-addressed image reference",
		Long: `Print registry/name:tag for each spec file, one line each. The tag is
the hash of everything that determines the image; nothing is contacted.`,
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, imgs, err := loadSpecs(cmd, args)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			enc := json.NewEncoder(out)
			for _, img := range imgs {
				if asJSON {
					if err := enc.Encode(img.Identity); err != nil {
						return err
					}
					continue
				}
				fmt.Fprintln(out, img.Identity.Ref)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per spec: ref, registry, repository, tag, spec_hash")
	return cmd
}

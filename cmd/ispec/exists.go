package main

import (
	"encoding/json"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"github.com/ispec-dev/ispec/cache"
)

// existsResult is one line of `ispec exists --json`.
type existsResult struct {
	Spec   string `json:"spec"`
	Ref    string `json:"ref"`
	State  string `json:"state"`
	Digest string `json:"digest,omitempty"`
	Reason string `json:"reason,omitempty"`
}

func newExistsCmd() *cobra.Command {
	var asJSON, verify bool
	cmd := &cobra.Command{
		Use:   "exists SPEC...",
		Short: "Ask the registry whether each spec's image exists",
		Long: `Compute each spec's reference and ask its registry for it. Prints
ref@digest for each image that exists. Three answers, never two: exists,
absent (the registry said so) or unknown (authentication failure, server
errors after retries, timeout, DNS), which is an error with the registry's
reason, never taken for "exists".

Images known to exist are remembered in a local index (ISPEC_CACHE_DIR);
--verify asks the registry again. Absent answers are never remembered.
Credentials come from the Docker config (DOCKER_CONFIG or
~/.docker/config.json, with credential helpers).

Exit 0 when all exist, 1 when any is absent (and none unknown), 3 when any
is unknown, 2 for an invalid spec.`,
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, imgs, err := loadSpecs(cmd, args)
			if err != nil {
				return err
			}
			refs := make([]name.Tag, len(imgs))
			for i, img := range imgs {
				if refs[i], err = imageTag(img); err != nil {
					return err
				}
			}
			var results []cache.Result
			if cfg.Server != "" {
				c, err := dialServer(cfg)
				if err != nil {
					return err
				}
				defer c.Close()
				if results, err = c.Lookup(cmd.Context(), imgs); err != nil {
					return err
				}
			} else {
				remote, err := newRemote(cfg)
				if err != nil {
					return err
				}
				checker, _ := withIndex(cfg, remote, verify, newMessages(cmd.ErrOrStderr(), ""))
				results = cache.LookupAll(cmd.Context(), checker, refs, 0)
			}
			code := exitOK
			out, enc := cmd.OutOrStdout(), json.NewEncoder(cmd.OutOrStdout())
			for i, r := range results {
				line := existsResult{Spec: args[i], Ref: r.Ref.Name(), State: r.State.String(), Reason: r.Message}
				switch r.State {
				case cache.Exists:
					line.Digest = r.Digest.String()
				case cache.Absent:
					if code == exitOK {
						code = exitAbsent
					}
				default:
					code = exitUnavailable
					if r.Err != nil {
						line.Reason = r.Err.Error()
					}
				}
				if asJSON {
					if err := enc.Encode(line); err != nil {
						return err
					}
					continue
				}
				switch r.State {
				case cache.Exists:
					fmt.Fprintf(out, "%s@%s\n", line.Ref, line.Digest)
				case cache.Absent:
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: absent\n", line.Ref)
				default:
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: unknown: %s\n", line.Ref, line.Reason)
				}
			}
			if code != exitOK {
				return &exitError{code: code}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per spec: spec, ref, state, digest, reason")
	cmd.Flags().BoolVar(&verify, "verify", false, "ask the registry even for tags the local index knows")
	addServerFlags(cmd.Flags())
	cmd.Flags().StringSlice("insecure-registries", nil, "registries reached over plain HTTP besides loopback ones (env ISPEC_INSECURE_REGISTRIES)")
	return cmd
}

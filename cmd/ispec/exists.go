package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"github.com/ispec-dev/ispec/cache"
	"github.com/ispec-dev/ispec/spec"
)

// existsResult is one line of `ispec exists --json`.
type existsResult struct {
	Spec   string `json:"spec"`
	Ref    string `json:"ref"`
	State  string `json:"state"`
	Digest string `json:"digest,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// existsLong is the help of `ispec exists`.
const existsLong = `Compute each spec's reference and ask its registry for it. Prints
ref@digest for each image that exists. Three answers, never two: exists,
absent (the registry said so) or unknown (authentication failure, server
errors after retries, timeout, DNS), which is an error with the registry's
reason, never taken for "exists".

Images known to exist are remembered in a local index (ISPEC_CACHE_DIR);
--verify asks the registry again. Absent answers are never remembered.
Credentials come from the Docker config (DOCKER_CONFIG or
~/.docker/config.json, with credential helpers).

Exit 0 when all exist, 1 when any is absent (and none unknown), 3 when any
is unknown, 2 for an invalid spec.`

func newExistsCmd() *cobra.Command {
	var asJSON, verify bool
	cmd := &cobra.Command{
		Use:   "exists SPEC...",
		Short: "Ask the registry whether each spec's image exists",
		Long:  existsLong,
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, imgs, err := loadSpecs(cmd, args)
			if err != nil {
				return err
			}
			results, err := lookupAll(cmd.Context(), cfg, imgs, verify, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			return renderExists(cmd.OutOrStdout(), cmd.ErrOrStderr(), args, results, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per spec: spec, ref, state, digest, reason")
	cmd.Flags().BoolVar(&verify, "verify", false, "ask the registry even for tags the local index knows")
	addServerFlags(cmd.Flags())
	cmd.Flags().StringSlice("insecure-registries", nil, "registries reached over plain HTTP besides loopback ones (env ISPEC_INSECURE_REGISTRIES)")
	return cmd
}

// lookupAll asks whether each image exists: through the configured
// server, or the local index and the registry.
func lookupAll(ctx context.Context, cfg *config, imgs []*spec.Image, verify bool, stderr io.Writer) ([]cache.Result, error) {
	refs := make([]name.Tag, len(imgs))
	for i, img := range imgs {
		var err error
		if refs[i], err = imageTag(img); err != nil {
			return nil, err
		}
	}
	if cfg.Server != "" {
		c, err := dialServer(cfg)
		if err != nil {
			return nil, err
		}
		defer c.Close()
		return c.Lookup(ctx, imgs)
	}
	lk, err := newLookup(cfg, verify, newMessages(stderr, ""))
	if err != nil {
		return nil, err
	}
	return cache.LookupAll(ctx, lk.Checker, refs, 0), nil
}

// renderExists prints each spec's answer (ref@digest on stdout, absent
// and unknown on stderr; or JSON lines) and returns the exit code's
// error: 1 when any is absent, 3 when any is unknown.
func renderExists(out, stderr io.Writer, specs []string, results []cache.Result, asJSON bool) error {
	code := exitOK
	enc := json.NewEncoder(out)
	for i, r := range results {
		line := existsResult{Spec: specs[i], Ref: r.Ref.Name(), State: r.State.String(), Reason: r.Message}
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
			fmt.Fprintf(stderr, "%s: absent\n", line.Ref)
		default:
			fmt.Fprintf(stderr, "%s: unknown: %s\n", line.Ref, line.Reason)
		}
	}
	if code != exitOK {
		return &exitError{code: code}
	}
	return nil
}

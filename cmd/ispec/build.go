package main

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"github.com/ispec-dev/ispec/builder"
	"github.com/ispec-dev/ispec/ensure"
	"github.com/ispec-dev/ispec/spec"
)

// buildResult is one line of `ispec build --json`.
type buildResult struct {
	Spec   string `json:"spec"`
	Ref    string `json:"ref"`
	Digest string `json:"digest"`
	// Built is true when this call built the image (also when it joined
	// a build of the same tag), false when it was found.
	Built bool `json:"built"`
	// Outcome is found, built or joined.
	Outcome  string  `json:"outcome"`
	Output   string  `json:"output,omitempty"`
	Duration float64 `json:"duration_seconds"`
	// Error is set when the spec failed; the command then stops.
	Error *errorRecord `json:"error,omitempty"`
}

func newBuildResult(specPath string, res *ensure.Result) buildResult {
	ref := res.Ref.Name()
	if res.Output != "" {
		// Inside a tarball the image keeps the name the spec gives it.
		ref = res.Ref.String()
	}
	return buildResult{
		Spec: specPath, Ref: ref, Digest: res.Digest.String(),
		Built:   res.Outcome == ensure.OutcomeBuilt || res.Outcome == ensure.OutcomeJoined,
		Outcome: res.Outcome.String(), Output: res.Output, Duration: res.Duration.Seconds(),
	}
}

type buildFlags struct {
	asJSON, force, noCache, verify bool
	noRegistryCache                bool
	progress, output               string
}

func newBuildCmd() *cobra.Command {
	var f buildFlags
	cmd := &cobra.Command{
		Use:   "build SPEC...",
		Short: "Build and push each spec's image, only when it is absent",
		Long: `For each spec: compute its reference, ask the registry, and only when
the image is absent build it with BuildKit and push it. A spec whose base
is another spec builds the parent first (once, however many children
share it). Prints ref@digest per spec on stdout; progress goes to stderr
as buildx shows it.

Parallel runs on one host build a tag once: a file lock in the cache dir
serializes them and the second finds the first's image. A failed build
pushes nothing and shows the failing step with the tail of its log.

--output oci:PATH writes an OCI image layout tarball, --output docker:PATH
a tarball that docker load accepts, instead of pushing: the one spec given
is always built, its registry is neither asked nor needed (the image is
named registry/name:tag, or name:tag without a registry). The file appears
only when the build succeeds. A docker tarball holds one platform.

A spec with several platforms builds an image index, one image per
platform; each must be one BuildKit's workers build for (natively or
through QEMU emulation), which is checked before any work starts.

BuildKit is reached at --buildkit-addr, else BUILDKIT_HOST
(unix:///path, tcp://host:port, docker-container://name).

Builds import BuildKit's cache from the registry and export it there
(every step), so that a daemon that never built a spec reuses what another
built: one cache per image repository (<registry>/<name>:ispec-cache) and
one per base image and apt set (<registry>/ispec-cache:family-<hash>).
--cache-registry puts it elsewhere; --no-registry-cache turns it off. An
--output build uses it only with --registry-cache. A cache that cannot be
read or written never fails a build: ispec warns once.

Exit 0 on success, 1 when a build step failed, 2 for an invalid spec or
usage (or a base image its registry does not have), 3 when a registry
(the image's or its base's) or BuildKit is unavailable, or BuildKit's
workers cannot build a platform the spec asks for, 130 or 143 when
SIGINT or SIGTERM interrupted it. With --json a spec that failed gets a
record with "error": {"class", "message"} (class invalid, unavailable,
failed or interrupted); with --progress json all of stderr is JSON.`,
		Args: minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			switch f.progress {
			case "auto", "tty", "plain", "json", "rawjson", "quiet":
			default:
				return usageError{fmt.Errorf("--progress %q: expected auto, tty, plain, json or quiet", f.progress)}
			}
			var out *builder.Output
			if f.output != "" {
				if out, err = builder.ParseOutput(f.output); err != nil {
					return usageError{fmt.Errorf("--output: %w", err)}
				}
				if len(args) != 1 {
					return usageError{fmt.Errorf("--output %s writes one image: give one spec, not %d", out, len(args))}
				}
			}
			if f.noRegistryCache && cfg.RegistryCache != nil && *cfg.RegistryCache && cmd.Flags().Changed("registry-cache") {
				return usageError{errors.New("--registry-cache and --no-registry-cache: give one")}
			}
			enc := json.NewEncoder(cmd.OutOrStdout())
			imgs, errs := loadEach(cmd.Context(), cfg, args)
			// failed ends the command with err, after a --json record for
			// the spec at i.
			failed := func(i int, err error) error {
				if f.asJSON {
					err = interruption(cmd.Context(), err)
					res := buildResult{Spec: args[i], Error: newErrorRecord(err)}
					if imgs[i] != nil {
						res.Ref = imgs[i].Identity.Ref
					}
					_ = enc.Encode(res)
				}
				return err
			}
			for i, err := range errs {
				if err != nil {
					failed(i, err)
				}
			}
			if err := errors.Join(errs...); err != nil {
				return err
			}
			warnExcluded(cmd.ErrOrStderr(), imgs)
			for i, img := range imgs {
				if _, err := builder.WithRegistryCache(builder.BuildOptions{Output: out}, img, cfg.cacheMode(f.noRegistryCache), cfg.CacheRegistry); err != nil {
					return failed(i, usageError{fmt.Errorf("cache-registry: %w", err)})
				}
				if out != nil {
					if err := checkOutput(img, out); err != nil {
						return failed(i, err)
					}
					continue
				}
				if _, err := imageTag(img); err != nil {
					return failed(i, err)
				}
			}
			if cfg.Server != "" && out != nil {
				return usageError{fmt.Errorf("--output writes a local file: it cannot go through --server")}
			}
			msgs := newMessages(cmd.ErrOrStderr(), f.progress)
			p, err := newEnsurer(cmd.Context(), cfg, f, msgs)
			if err != nil {
				return err
			}
			defer p.close()
			for i, img := range imgs {
				rd := newRenderer(cmd.Context(), f.progress, cmd.ErrOrStderr(), msgs)
				req := ensure.Request{Force: f.force, NoCache: f.noCache, Sink: rd.sink}
				var res *ensure.Result
				if out != nil {
					res, err = p.(*cliPipeline).Export(cmd.Context(), img, out, req)
				} else {
					res, err = p.Ensure(cmd.Context(), img, req)
				}
				if err != nil {
					return failed(i, err)
				}
				if f.asJSON {
					if err := enc.Encode(newBuildResult(args[i], res)); err != nil {
						return err
					}
					continue
				}
				fmt.Fprintln(cmd.OutOrStdout(), res.Pinned())
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.asJSON, "json", false, "print one JSON object per spec: spec, ref, digest, built, output, duration_seconds; for a spec that failed, error (class, message)")
	fl.BoolVar(&f.force, "force", false, "build and push even when the image exists")
	fl.BoolVar(&f.verify, "verify", false, "ask the registry even for tags the local index knows (after a registry was emptied)")
	fl.BoolVar(&f.noCache, "no-cache", false, "run every step again instead of reusing BuildKit's cache")
	fl.StringVar(&f.progress, "progress", "auto", "progress on stderr: auto, tty, plain, json or quiet")
	fl.StringVar(&f.output, "output", "", "write the image to oci:PATH (OCI layout tarball) or docker:PATH (docker load tarball) instead of pushing; always builds")
	fl.BoolVar(&f.noRegistryCache, "no-registry-cache", false, "neither import nor export BuildKit's cache in the registry (config registry-cache: false)")
	fl.Bool("registry-cache", true, "import and export BuildKit's cache in the registry, --output builds included (default: pushes only; env ISPEC_REGISTRY_CACHE)")
	fl.String("cache-registry", "", "registry (host[:port][/path]) for BuildKit's cache instead of each image's (env ISPEC_CACHE_REGISTRY)")
	fl.String("pip-netrc", "", "netrc file with private package index credentials, given to pip as a BuildKit secret (env ISPEC_PIP_NETRC)")
	addServerFlags(fl)
	fl.String("buildkit-addr", "", "BuildKit address (env ISPEC_BUILDKIT_ADDR or BUILDKIT_HOST)")
	fl.StringSlice("insecure-registries", nil, "registries reached over plain HTTP besides loopback ones (env ISPEC_INSECURE_REGISTRIES)")
	return cmd
}

// checkOutput checks, before any work, that img can be written to out.
func checkOutput(img *spec.Image, out *builder.Output) error {
	// Without a registry the image is named name:tag.
	if _, err := name.NewTag(img.Identity.Ref); err != nil {
		return usageError{fmt.Errorf("%s: %w", img.File, err)}
	}
	if err := out.Check(len(img.Spec.Platform)); err != nil {
		return usageError{fmt.Errorf("%s: %w", img.File, err)}
	}
	return nil
}

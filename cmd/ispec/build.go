package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/ispec-dev/ispec/builder"
	"github.com/ispec-dev/ispec/cache"
	"github.com/ispec-dev/ispec/spec"
)

// buildResult is one line of `ispec build --json`.
type buildResult struct {
	Spec     string  `json:"spec"`
	Ref      string  `json:"ref"`
	Digest   string  `json:"digest"`
	Built    bool    `json:"built"`
	Output   string  `json:"output,omitempty"`
	Duration float64 `json:"duration_seconds"`
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
usage, 3 when the registry or BuildKit is unavailable, or BuildKit's
workers cannot build a platform the spec asks for.`,
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
			imgs, err := loadAll(cmd.Context(), cfg, args, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			for _, img := range imgs {
				if _, err := builder.WithRegistryCache(builder.BuildOptions{Output: out}, img, cfg.cacheMode(f.noRegistryCache), cfg.CacheRegistry); err != nil {
					return usageError{fmt.Errorf("cache-registry: %w", err)}
				}
				if out != nil {
					if err := checkOutput(img, out); err != nil {
						return err
					}
					continue
				}
				if _, err := imageTag(img); err != nil {
					return err
				}
			}
			r, err := newBuildRun(cfg, f, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer r.close()
			enc := json.NewEncoder(cmd.OutOrStdout())
			for i, img := range imgs {
				var res *buildResult
				if out != nil {
					res, err = r.export(cmd.Context(), img, out)
				} else {
					res, err = r.ensure(cmd.Context(), img)
				}
				if err != nil {
					return err
				}
				if f.asJSON {
					res.Spec = args[i]
					if err := enc.Encode(res); err != nil {
						return err
					}
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%s@%s\n", res.Ref, res.Digest)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&f.asJSON, "json", false, "print one JSON object per spec: spec, ref, digest, built, output, duration_seconds")
	fl.BoolVar(&f.force, "force", false, "build and push even when the image exists")
	fl.BoolVar(&f.verify, "verify", false, "ask the registry even for tags the local index knows (after a registry was emptied)")
	fl.BoolVar(&f.noCache, "no-cache", false, "run every step again instead of reusing BuildKit's cache")
	fl.StringVar(&f.progress, "progress", "auto", "progress on stderr: auto, tty, plain, json or quiet")
	fl.StringVar(&f.output, "output", "", "write the image to oci:PATH (OCI layout tarball) or docker:PATH (docker load tarball) instead of pushing; always builds")
	fl.BoolVar(&f.noRegistryCache, "no-registry-cache", false, "neither import nor export BuildKit's cache in the registry (config registry-cache: false)")
	fl.Bool("registry-cache", true, "import and export BuildKit's cache in the registry, --output builds included (default: pushes only; env ISPEC_REGISTRY_CACHE)")
	fl.String("cache-registry", "", "registry (host[:port][/path]) for BuildKit's cache instead of each image's (env ISPEC_CACHE_REGISTRY)")
	fl.String("pip-netrc", "", "netrc file with private package index credentials, given to pip as a BuildKit secret (env ISPEC_PIP_NETRC)")
	fl.String("buildkit-addr", "", "BuildKit address (env ISPEC_BUILDKIT_ADDR or BUILDKIT_HOST)")
	fl.StringSlice("insecure-registries", nil, "registries reached over plain HTTP besides loopback ones (env ISPEC_INSECURE_REGISTRIES)")
	return cmd
}

// buildRun is one `ispec build` invocation: it remembers what it built, so
// a parent shared by several specs is resolved once, and connects to
// BuildKit only when something must be built.
type buildRun struct {
	cfg     *config
	flags   buildFlags
	stderr  io.Writer
	remote  *cache.Remote
	checker cache.Checker
	index   *cache.Index
	b       *builder.Builder
	netrc   []byte
	done    map[string]*buildResult
}

func newBuildRun(cfg *config, f buildFlags, stderr io.Writer) (*buildRun, error) {
	if cfg.CacheDir == "" {
		return nil, usageError{fmt.Errorf("no cache dir for build locks: set --cache-dir or ISPEC_CACHE_DIR")}
	}
	remote, err := newRemote(cfg)
	if err != nil {
		return nil, err
	}
	r := &buildRun{cfg: cfg, flags: f, stderr: stderr, remote: remote, done: map[string]*buildResult{}}
	if cfg.PipNetrc != "" {
		// Read now, so that a wrong path fails before any work; the
		// contents never reach an error message.
		if r.netrc, err = os.ReadFile(cfg.PipNetrc); err != nil {
			return nil, usageError{fmt.Errorf("pip-netrc: reading %s: %w", cfg.PipNetrc, errors.Unwrap(err))}
		}
	}
	r.checker, r.index = withIndex(cfg, remote, f.verify, stderr)
	return r, nil
}

func (r *buildRun) close() {
	if r.b != nil {
		r.b.Close()
	}
}

// ensure makes img exist in its registry: found, or built and pushed.
func (r *buildRun) ensure(ctx context.Context, img *spec.Image) (*buildResult, error) {
	if res, ok := r.done[img.Identity.Ref]; ok {
		return res, nil
	}
	start := time.Now()
	ref, err := imageTag(img)
	if err != nil {
		return nil, err
	}
	base, err := r.parentBase(ctx, img)
	if err != nil {
		return nil, err
	}
	if !r.flags.force {
		if res, err := r.found(ctx, r.checker, ref, start); res != nil || err != nil {
			return r.remember(img, res, err)
		}
	}
	unlock, err := cache.LockTag(ctx, r.cfg.CacheDir, ref.Name())
	if err != nil {
		return nil, fmt.Errorf("waiting for the build lock of %s: %w", ref.Name(), err)
	}
	defer unlock()
	if !r.flags.force {
		// Another process may have built it while we waited for the lock.
		if res, err := r.found(ctx, r.remote, ref, start); res != nil || err != nil {
			return r.remember(img, res, err)
		}
	}
	if err := r.connect(ctx); err != nil {
		return nil, err
	}
	out, err := r.build(ctx, img, builder.BuildOptions{Base: base, Ref: ref.Name(), NoCache: r.flags.noCache})
	if err != nil {
		return nil, fmt.Errorf("building %s: %w", ref.Name(), err)
	}
	if r.index != nil {
		if h, err := v1.NewHash(out.Digest); err == nil {
			if err := r.index.Put(ref, h, ""); err != nil {
				fmt.Fprintf(r.stderr, "ispec: warning: local index: %v\n", err)
			}
		}
	}
	return r.remember(img, &buildResult{Ref: ref.Name(), Digest: out.Digest, Built: true, Duration: time.Since(start).Seconds()}, nil)
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

// export builds img into a local file: no lookup, no lock, no push. A
// parent spec is still found or built in its registry, since the image
// builds on its digest.
func (r *buildRun) export(ctx context.Context, img *spec.Image, output *builder.Output) (*buildResult, error) {
	start := time.Now()
	base, err := r.parentBase(ctx, img)
	if err != nil {
		return nil, err
	}
	if err := r.connect(ctx); err != nil {
		return nil, err
	}
	ref := img.Identity.Ref
	out, err := r.build(ctx, img, builder.BuildOptions{Base: base, Ref: ref, Output: output, NoCache: r.flags.noCache})
	if err != nil {
		return nil, fmt.Errorf("building %s: %w", ref, err)
	}
	return &buildResult{Ref: ref, Digest: out.Digest, Built: true, Output: output.String(), Duration: time.Since(start).Seconds()}, nil
}

// build runs one BuildKit build, showing its progress on stderr.
func (r *buildRun) build(ctx context.Context, img *spec.Image, opts builder.BuildOptions) (*builder.Result, error) {
	prog := builder.NewProgress()
	shown := make(chan struct{})
	go func() {
		defer close(shown)
		if r.flags.progress == "quiet" {
			for range prog.Subscribe(ctx) {
			}
			return
		}
		if err := builder.Display(ctx, r.flags.progress, r.stderr, prog.Subscribe(ctx)); err != nil {
			fmt.Fprintf(r.stderr, "ispec: warning: %v\n", err)
		}
	}()
	opts.Progress = prog
	opts.PipNetrc = r.netrc
	opts, err := builder.WithRegistryCache(opts, img, r.cfg.cacheMode(r.flags.noRegistryCache), r.cfg.CacheRegistry)
	if err != nil {
		prog.Close()
		<-shown
		return nil, err
	}
	out, err := r.b.Build(ctx, img, opts)
	<-shown
	if out != nil {
		for _, w := range out.Warnings {
			fmt.Fprintf(r.stderr, "ispec: warning: %s: %s\n", out.Ref, w)
		}
	}
	return out, err
}

// parentBase makes a nested spec's parent exist and returns its
// ref@digest to build on; "" when the base is not a spec.
func (r *buildRun) parentBase(ctx context.Context, img *spec.Image) (string, error) {
	if img.Parent == nil {
		return "", nil
	}
	pres, err := r.ensure(ctx, img.Parent)
	if err != nil {
		return "", fmt.Errorf("base spec %s: %w", img.Parent.File, err)
	}
	return pres.Ref + "@" + pres.Digest, nil
}

// found looks ref up: a result when it exists, neither when it is absent,
// an error when the registry cannot say.
func (r *buildRun) found(ctx context.Context, c cache.Checker, ref name.Tag, start time.Time) (*buildResult, error) {
	res := c.Lookup(ctx, ref)
	switch res.State {
	case cache.Exists:
		return &buildResult{Ref: ref.Name(), Digest: res.Digest.String(), Duration: time.Since(start).Seconds()}, nil
	case cache.Absent:
		return nil, nil
	}
	return nil, res.Err
}

func (r *buildRun) remember(img *spec.Image, res *buildResult, err error) (*buildResult, error) {
	if err != nil {
		return nil, err
	}
	r.done[img.Identity.Ref] = res
	return res, nil
}

// connect connects to BuildKit on first use.
func (r *buildRun) connect(ctx context.Context) error {
	if r.b != nil {
		return nil
	}
	b, err := builder.New(ctx, builder.Options{Addr: r.cfg.BuildkitAddr, Version: ispecVersion()})
	if err != nil {
		return err
	}
	r.b = b
	return nil
}

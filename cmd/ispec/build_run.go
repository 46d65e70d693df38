package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/ispec-dev/ispec/builder"
	"github.com/ispec-dev/ispec/ensure"
	"github.com/ispec-dev/ispec/spec"
)

// runBuild is `ispec build`: every spec is attempted, --jobs at a time;
// an invalid spec, or one that fails, is reported and the others go on;
// the exit code is the worst of all.
func runBuild(cmd *cobra.Command, f buildFlags, args []string) error {
	ctx := cmd.Context()
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	switch f.progress {
	case "auto", "tty", "plain", "json", "rawjson", "quiet":
	default:
		return usageError{fmt.Errorf("--progress %q: expected auto, tty, plain, json or quiet", f.progress)}
	}
	if f.jobs < 1 {
		return usageError{fmt.Errorf("--jobs %d: expected 1 or more", f.jobs)}
	}
	if f.imageArgs && f.asJSON {
		return usageError{fmt.Errorf("--image-args and --json both print on stdout: give one (--json-out writes the records to a file)")}
	}
	if err := checkJSONOut(f.jsonOut); err != nil {
		return err
	}
	if f.noRegistryCache && cfg.RegistryCache != nil && *cfg.RegistryCache && cmd.Flags().Changed("registry-cache") {
		return usageError{errors.New("--registry-cache and --no-registry-cache: give one")}
	}
	paths, err := expandSpecArgs(args)
	if err != nil {
		return err
	}
	var out *builder.Output
	if f.output != "" {
		if out, err = builder.ParseOutput(f.output); err != nil {
			return usageError{fmt.Errorf("--output: %w", err)}
		}
		if len(paths) != 1 && !out.IsFolder() {
			return usageError{fmt.Errorf("--output %s writes one image: give one spec, not %d, or a folder (%s:DIR/) for a file per spec", out, len(paths), out.Type)}
		}
		if f.imageArgs {
			return usageError{fmt.Errorf("--image-args names images in a registry: --output writes a local file")}
		}
		if cfg.Server != "" {
			return usageError{fmt.Errorf("--output writes a local file: it cannot go through --server")}
		}
	}
	// With several builds at once, each line of progress is marked with its
	// spec and written whole; a live tty display cannot be shared, so
	// it becomes plain.
	stderr := io.Writer(&lockedWriter{w: cmd.ErrOrStderr()})
	mode := f.progress
	if f.jobs > 1 && len(paths) > 1 && (mode == "auto" || mode == "tty") {
		mode = "plain"
	}
	msgs := newMessages(stderr, f.progress)

	imgs, errs := loadEach(ctx, cfg, paths)
	run := newBuildRun(ctx, f, paths, imgs, cmd.OutOrStdout(), stderr, msgs)
	var valid []*spec.Image
	for i, img := range imgs {
		switch {
		case errs[i] != nil:
			run.failed(i, errs[i], 0)
			continue
		}
		if _, err := builder.WithRegistryCache(builder.BuildOptions{Output: out}, img, cfg.cacheMode(f.noRegistryCache), cfg.CacheRegistry); err != nil {
			run.failed(i, usageError{fmt.Errorf("cache-registry: %w", err)}, 0)
			continue
		}
		if cfg.Locked {
			if err := img.LockedError(); err != nil {
				run.failed(i, err, 0)
				continue
			}
		}
		switch {
		case out != nil:
			err = checkOutput(img, out.For(img.Spec.Name, img.Identity.Tag))
		default:
			_, err = imageTag(img)
		}
		if err != nil {
			run.failed(i, err, 0)
			continue
		}
		valid = append(valid, img)
	}
	warnLoaded(msgs, valid)
	if len(valid) > 0 {
		p, err := newEnsurer(ctx, cfg, f, msgs)
		if err != nil {
			return err
		}
		defer p.close()
		if lp, ok := p.(*cliPipeline); ok {
			lp.prepare(ctx, valid)
		}
		run.each(f.jobs, func(i int) {
			w, flush := stderr, func() {}
			if f.jobs > 1 && len(paths) > 1 {
				lw := newLineWriter(stderr, paths[i], mode == "json" || mode == "rawjson")
				w, flush = lw, lw.flush
			}
			rd := newRenderer(ctx, mode, w, msgs)
			req := ensure.Request{Force: f.force, NoCache: f.noCache, Sink: rd.sink}
			start := time.Now()
			var res *ensure.Result
			var err error
			if out != nil {
				res, err = p.(*cliPipeline).Export(ctx, imgs[i], out.For(imgs[i].Spec.Name, imgs[i].Identity.Tag), req)
			} else {
				res, err = p.Ensure(ctx, imgs[i], req)
			}
			rd.stop()
			flush()
			if err != nil {
				run.failed(i, err, time.Since(start))
				return
			}
			run.succeeded(i, res)
		})
	}
	return run.report()
}

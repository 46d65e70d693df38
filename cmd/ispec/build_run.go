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
	cfg, err := loadConfig(cmd)
	if err != nil {
		return err
	}
	if err := f.check(cfg, cmd.Flags().Changed("registry-cache")); err != nil {
		return err
	}
	paths, err := expandSpecArgs(args)
	if err != nil {
		return err
	}
	out, err := f.outputFor(cfg, len(paths))
	if err != nil {
		return err
	}
	// With several builds at once, each line of progress is marked with its
	// spec and written whole.
	stderr := io.Writer(&lockedWriter{w: cmd.ErrOrStderr()})
	imgs, errs := loadEach(cmd.Context(), cfg, paths)
	run := newBuildRun(cmd.Context(), f, paths, imgs, cmd.OutOrStdout(), stderr, newMessages(stderr, f.progress))
	return run.build(cfg, errs, out)
}

// check refuses flags that contradict each other or take no such value.
// registryCacheFlag is whether --registry-cache was given.
func (f buildFlags) check(cfg *config, registryCacheFlag bool) error {
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
	if f.noRegistryCache && cfg.RegistryCache != nil && *cfg.RegistryCache && registryCacheFlag {
		return usageError{errors.New("--registry-cache and --no-registry-cache: give one")}
	}
	return nil
}

// outputFor returns where --output writes the images of n specs; nil:
// they are pushed.
func (f buildFlags) outputFor(cfg *config, n int) (*builder.Output, error) {
	if f.output == "" {
		return nil, nil
	}
	out, err := builder.ParseOutput(f.output)
	if err != nil {
		return nil, usageError{fmt.Errorf("--output: %w", err)}
	}
	if n != 1 && !out.IsFolder() {
		return nil, usageError{fmt.Errorf("--output %s writes one image: give one spec, not %d, or a folder (%s:DIR/) for a file per spec", out, n, out.Type)}
	}
	if f.imageArgs {
		return nil, usageError{fmt.Errorf("--image-args names images in a registry: --output writes a local file")}
	}
	if cfg.Server != "" {
		return nil, usageError{fmt.Errorf("--output writes a local file: it cannot go through --server")}
	}
	return out, nil
}

// build builds (or exports to out) the specs that loaded (errs are the
// others') --jobs at a time, and reports.
func (r *buildRun) build(cfg *config, errs []error, out *builder.Output) error {
	valid := r.checkEach(errs, out, cfg.Locked)
	warnLoaded(r.msgs, valid)
	if len(valid) > 0 {
		p, err := newEnsurer(r.ctx, cfg, r.f, r.msgs)
		if err != nil {
			return err
		}
		defer p.close()
		p.Prepare(r.ctx, valid)
		r.each(r.f.jobs, func(i int) { r.buildOne(p, i, out) })
	}
	return r.report()
}

// checkEach records the specs that failed to load, or cannot be built as
// asked (with locked, a spec whose Python requirements float), and
// returns the others.
func (r *buildRun) checkEach(errs []error, out *builder.Output, locked bool) []*spec.Image {
	var valid []*spec.Image
	for i, img := range r.imgs {
		err := errs[i]
		switch {
		case err != nil:
		case locked && img.LockedError() != nil:
			// --locked: a spec whose Python requirements float is refused.
			err = img.LockedError()
		case out != nil:
			err = checkOutput(img, out.For(img.Spec.Name, img.Identity.Tag))
		default:
			_, err = imageTag(img)
		}
		if err != nil {
			r.failed(i, err, 0)
			continue
		}
		valid = append(valid, img)
	}
	return valid
}

// buildOne builds spec i with p (or exports it to out), showing its
// progress, and records its outcome.
func (r *buildRun) buildOne(p ensurer, i int, out *builder.Output) {
	w, flush := r.stderr, func() {}
	if r.concurrent() {
		lw := newLineWriter(r.stderr, r.paths[i], r.mode == "json" || r.mode == "rawjson")
		w, flush = lw, lw.flush
	}
	rd := newRenderer(r.ctx, r.mode, w, r.msgs)
	req := ensure.Request{Force: r.f.force, NoCache: r.f.noCache, Sink: rd.sink}
	start := time.Now()
	res, err := r.ensure(p, r.imgs[i], out, req)
	rd.stop()
	flush()
	if err != nil {
		r.failed(i, err, time.Since(start))
		return
	}
	r.succeeded(i, res)
}

// ensure makes img exist, or writes it to out.
func (r *buildRun) ensure(p ensurer, img *spec.Image, out *builder.Output, req ensure.Request) (*ensure.Result, error) {
	if out != nil {
		return p.Export(r.ctx, img, out.For(img.Spec.Name, img.Identity.Tag), req)
	}
	return p.Ensure(r.ctx, img, req)
}

// concurrent is whether several specs build at once: then each line of
// progress is marked with its spec.
func (r *buildRun) concurrent() bool { return r.f.jobs > 1 && len(r.paths) > 1 }

// progressMode is the progress display of a run: a live tty display
// cannot be shared by concurrent builds, so it becomes plain.
func progressMode(f buildFlags, specs int) string {
	if f.jobs > 1 && specs > 1 && (f.progress == "auto" || f.progress == "tty") {
		return "plain"
	}
	return f.progress
}

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/spf13/cobra"

	"github.com/ispec-dev/ispec/cache"
	"github.com/ispec-dev/ispec/spec"
)

// lockLong is the help of `ispec lock`.
const lockLong = `Write SPEC.lock beside each spec file. It pins the base image's digest
for each target platform (and records a nested parent spec's reference).
While a lock file is present the tag covers the pinned digests and builds
use them, so an upstream change of the base tag neither changes the image
nor goes unnoticed.

--check writes nothing: it resolves the base again and exits 1 naming what
drifted when the upstream tag has moved, 0 when nothing did.
The format is described in docs/lockfile.md.`

func newLockCmd() *cobra.Command {
	var check bool
	cmd := &cobra.Command{
		Use:   "lock SPEC...",
		Short: "Pin what a spec leaves floating (the base image's digests)",
		Long:  lockLong,
		Args:  minArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			opts := cfg.specOptions()
			opts.IgnoreLock = true
			r, err := newRemote(cfg)
			if err != nil {
				return err
			}
			drifted, err := lockEach(cmd.Context(), r, args, opts, check, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			if drifted {
				return &exitError{code: exitAbsent}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&check, "check", false, "report drift from upstream without writing; exit 1 when something drifted")
	cmd.Flags().StringSlice("insecure-registries", nil, "registries reached over plain HTTP besides loopback ones (env ISPEC_INSECURE_REGISTRIES)")
	return cmd
}

// lockEach writes the lock of each spec at paths (printing its path), or
// with check compares it with a fresh one (printing what drifted);
// drifted is whether anything did.
func lockEach(ctx context.Context, r *cache.Remote, paths []string, opts spec.Options, check bool, out io.Writer) (drifted bool, err error) {
	for _, p := range paths {
		img, err := spec.Load(ctx, p, opts)
		if err != nil {
			return false, err
		}
		fresh, err := resolveLock(ctx, r, img)
		if err != nil {
			return false, err
		}
		if !check {
			if err := spec.WriteLock(p, fresh); err != nil {
				return false, err
			}
			fmt.Fprintln(out, spec.LockPath(p))
			continue
		}
		old, err := spec.ReadLock(p)
		if err != nil {
			return false, err
		}
		if old == nil {
			return false, usageError{fmt.Errorf("%s: no lock file to check; run ispec lock %s", p, p)}
		}
		for _, d := range lockDrift(old, fresh) {
			drifted = true
			fmt.Fprintf(out, "%s: %s\n", spec.LockPath(p), d)
		}
	}
	return drifted, nil
}

// resolveLock asks the registry what the spec's floating inputs are now.
func resolveLock(ctx context.Context, r *cache.Remote, img *spec.Image) (*spec.Lock, error) {
	l := &spec.Lock{Version: spec.LockVersion}
	if img.Parent != nil {
		l.Parent = &spec.LockedParent{Spec: img.Spec.BaseImage.Spec, Ref: img.Parent.Identity.Ref}
		return l, nil
	}
	ref, err := name.ParseReference(img.Base)
	if err != nil {
		return nil, usageError{fmt.Errorf("%s: base_image: %w", img.File, err)}
	}
	plats := make([]v1.Platform, len(img.Spec.Platform))
	for i, p := range img.Spec.Platform {
		pl, err := v1.ParsePlatform(p)
		if err != nil {
			return nil, usageError{err}
		}
		plats[i] = *pl
	}
	res, err := r.ResolvePlatforms(ctx, ref, plats)
	if err != nil {
		var pe *cache.PlatformError
		if cache.IsAbsent(err) || errors.As(err, &pe) {
			return nil, usageError{fmt.Errorf("%s: base_image: %w", img.File, err)}
		}
		return nil, fmt.Errorf("%s: resolving base image: %w", img.File, err)
	}
	l.BaseImage = &spec.LockedImage{Ref: img.Base, Digest: res.Digest.String(), Platforms: map[string]string{}}
	for i, pd := range res.Platforms {
		l.BaseImage.Platforms[img.Spec.Platform[i]] = pd.Digest.String()
	}
	return l, nil
}

// lockDrift names each pinned value that upstream no longer agrees with.
func lockDrift(old, fresh *spec.Lock) []string {
	var out []string
	if fresh.BaseImage != nil {
		ob := old.BaseImage
		switch {
		case ob == nil || ob.Ref != fresh.BaseImage.Ref:
			out = append(out, fmt.Sprintf("base_image: the lock does not pin %s; run ispec lock", fresh.BaseImage.Ref))
		default:
			if ob.Digest != fresh.BaseImage.Digest {
				out = append(out, fmt.Sprintf("base_image %s: %s moved to %s", ob.Ref, ob.Digest, fresh.BaseImage.Digest))
			}
			var plats []string
			for p := range fresh.BaseImage.Platforms {
				plats = append(plats, p)
			}
			sort.Strings(plats)
			for _, p := range plats {
				if o, n := ob.Platforms[p], fresh.BaseImage.Platforms[p]; o != n {
					out = append(out, fmt.Sprintf("base_image %s (%s): %s moved to %s", ob.Ref, p, orAbsent(o), n))
				}
			}
		}
	}
	if fresh.Parent != nil && (old.Parent == nil || old.Parent.Ref != fresh.Parent.Ref) {
		was := "(none)"
		if old.Parent != nil {
			was = old.Parent.Ref
		}
		out = append(out, fmt.Sprintf("parent %s: %s is now %s", fresh.Parent.Spec, was, fresh.Parent.Ref))
	}
	return out
}

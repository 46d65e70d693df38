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

It also resolves the spec's Python packages and requirements file with
pip's own resolver, on the pinned base for each platform, inside BuildKit
(pip install --dry-run --report), and records every distribution (name,
version, file, URL, sha256): builds then install exactly those, with
--no-deps --require-hashes. A spec whose requirements name a Python lock
file (uv.lock, poetry.lock, pylock.toml) is pinned by it already.
--pylock FILE also writes the pins as a PEP 751 pylock.toml;
--upgrade-package NAME moves that package only, keeping every other pin.

--check writes nothing: it resolves the base and the Python packages again
and exits 1 naming what drifted (a moved base tag; each package locked and
available side by side), 0 when nothing did.
The format is described in docs/lockfile.md.`

func newLockCmd() *cobra.Command {
	var lf lockFlags
	cmd := &cobra.Command{
		Use:   "lock SPEC...",
		Short: "Pin what a spec leaves floating (the base image's digests, its Python packages)",
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
			if lf.pylock != "" && len(args) != 1 {
				return usageError{fmt.Errorf("--pylock writes one file: give one spec, not %d", len(args))}
			}
			py := &pythonLocker{cfg: cfg}
			defer py.close()
			drifted, err := lockEach(cmd.Context(), r, py, args, opts, lf, cmd.OutOrStdout())
			if err != nil {
				return err
			}
			if drifted {
				return &exitError{code: exitAbsent}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&lf.check, "check", false, "report drift from upstream without writing; exit 1 when something drifted")
	cmd.Flags().StringVar(&lf.pylock, "pylock", "", "also write the Python pins as a PEP 751 pylock.toml to `FILE`")
	cmd.Flags().StringSliceVar(&lf.upgrade, "upgrade-package", nil, "move only the Python package `NAME` (repeatable), keeping every other pin")
	cmd.Flags().String("buildkit-addr", "", "BuildKit address, to resolve Python packages (env ISPEC_BUILDKIT_ADDR or BUILDKIT_HOST)")
	addBuildkitTLSFlags(cmd.Flags())
	cmd.Flags().String("pip-netrc", "", "netrc file with private package index credentials, given to pip as a BuildKit secret (env ISPEC_PIP_NETRC)")
	cmd.Flags().StringSlice("insecure-registries", nil, "registries reached over plain HTTP besides loopback ones (env ISPEC_INSECURE_REGISTRIES)")
	return cmd
}

// lockFlags are the flags of `ispec lock`.
type lockFlags struct {
	check   bool
	pylock  string
	upgrade []string
}

// lockEach writes the lock of each spec at paths (printing its path), or
// with check compares it with a fresh one (printing what drifted);
// drifted is whether anything did.
func lockEach(ctx context.Context, r *cache.Remote, py *pythonLocker, paths []string, opts spec.Options, lf lockFlags, out io.Writer) (drifted bool, err error) {
	for _, p := range paths {
		img, err := spec.Load(ctx, p, opts)
		if err != nil {
			return false, err
		}
		fresh, err := resolveLock(ctx, r, img)
		if err != nil {
			return false, err
		}
		old, err := spec.ReadLock(p)
		if err != nil {
			return false, err
		}
		if err := py.lock(ctx, img, fresh, old, lf.upgrade); err != nil {
			return false, err
		}
		if !lf.check {
			if err := writeLocks(p, lf.pylock, fresh, out); err != nil {
				return false, err
			}
			continue
		}
		if old == nil {
			return false, usageError{fmt.Errorf("%s: no lock file to check; run ispec lock %s", p, p)}
		}
		for _, d := range append(lockDrift(old, fresh), pythonDrift(old, fresh)...) {
			drifted = true
			fmt.Fprintf(out, "%s: %s\n", spec.LockPath(p), d)
		}
	}
	return drifted, nil
}

// writeLocks writes the lock of the spec at p, and pylockFile when it is
// given, printing each path.
func writeLocks(p, pylockFile string, fresh *spec.Lock, out io.Writer) error {
	if err := spec.WriteLock(p, fresh); err != nil {
		return err
	}
	fmt.Fprintln(out, spec.LockPath(p))
	if pylockFile == "" {
		return nil
	}
	if err := writePylock(pylockFile, fresh); err != nil {
		return err
	}
	fmt.Fprintln(out, pylockFile)
	return nil
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

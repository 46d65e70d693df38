package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/ispec-dev/ispec/internal/atomicfile"
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

--server (or ISPEC_SERVER) resolves through an ispec serve instead, so a
machine without BuildKit can lock: the spec, its lock file and its
requirements files are sent (copied files by digest only, secret files
never); the server resolves with its own registry access, BuildKit and pip
credentials, and the lock file (and --pylock's) is written here,
atomically, byte for byte as a local lock writes it. A spec with
pip_secret_mounts is locked without --server.
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
			if lf.pylock != "" && len(args) != 1 {
				return usageError{fmt.Errorf("--pylock writes one file: give one spec, not %d", len(args))}
			}
			opts := cfg.specOptions()
			opts.IgnoreLock = true
			var lk specLocker
			if cfg.Server != "" {
				c, err := dialServer(cfg)
				if err != nil {
					return err
				}
				defer c.Close()
				lk = &remoteLocker{c: c}
			} else {
				l, closeFn, err := newLocalLocker(cfg)
				if err != nil {
					return err
				}
				defer closeFn()
				lk = l
			}
			drifted, err := lockEach(cmd.Context(), lk, args, opts, lf, cmd.OutOrStdout())
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
	addServerFlags(cmd.Flags())
	return cmd
}

// lockFlags are the flags of `ispec lock`.
type lockFlags struct {
	check   bool
	pylock  string
	upgrade []string
}

// specLocker makes the lock of a loaded spec, here or through a server.
type specLocker interface {
	// lock returns the encoded lock file of img (old is its current lock,
	// nil when it has none) and, when pylockFile is set, the pylock.toml;
	// with check, it writes nothing and returns what drifted instead.
	lock(ctx context.Context, img *spec.Image, old *spec.Lock, req lockRequest) (*lockAnswer, error)
}

// lockRequest is what one spec's lock asks for.
type lockRequest struct {
	upgrade    []string
	check      bool
	pylockFile string
}

// lockAnswer is one spec's lock: the lock file's bytes and the
// pylock.toml's (when asked), or what drifted (with check).
type lockAnswer struct {
	lock, pylock []byte
	drift        []string
}

// lockEach writes the lock of each spec at paths (printing its path), or
// with check compares it with a fresh one (printing what drifted);
// drifted is whether anything did.
func lockEach(ctx context.Context, lk specLocker, paths []string, opts spec.Options, lf lockFlags, out io.Writer) (drifted bool, err error) {
	for _, p := range paths {
		img, err := spec.Load(ctx, p, opts)
		if err != nil {
			return false, err
		}
		old, err := spec.ReadLock(p)
		if err != nil {
			return false, err
		}
		if lf.check && old == nil {
			return false, usageError{fmt.Errorf("%s: no lock file to check; run ispec lock %s", p, p)}
		}
		ans, err := lk.lock(ctx, img, old, lockRequest{upgrade: lf.upgrade, check: lf.check, pylockFile: lf.pylock})
		if err != nil {
			return false, err
		}
		if lf.check {
			for _, d := range ans.drift {
				drifted = true
				fmt.Fprintf(out, "%s: %s\n", spec.LockPath(p), d)
			}
			continue
		}
		if err := writeLocks(p, lf.pylock, ans, out); err != nil {
			return false, err
		}
	}
	return drifted, nil
}

// writeLocks writes the lock of the spec at p, and pylockFile when it is
// given, each atomically, printing each path. A lock that does not parse
// (from a server) is refused before anything is written.
func writeLocks(p, pylockFile string, ans *lockAnswer, out io.Writer) error {
	if _, err := spec.ParseLock(spec.LockPath(p), ans.lock); err != nil {
		return fmt.Errorf("the lock received: %w", err)
	}
	if pylockFile != "" && len(ans.pylock) == 0 {
		return fmt.Errorf("--pylock %s: no pylock.toml was made", pylockFile)
	}
	if err := spec.WriteLockData(p, ans.lock); err != nil {
		return err
	}
	fmt.Fprintln(out, spec.LockPath(p))
	if pylockFile == "" {
		return nil
	}
	if err := atomicfile.WriteFile(pylockFile, ans.pylock, 0o644); err != nil {
		return fmt.Errorf("--pylock: %w", err)
	}
	fmt.Fprintln(out, pylockFile)
	return nil
}

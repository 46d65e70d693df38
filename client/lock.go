package client

import (
	"context"
	"fmt"

	apiv1 "github.com/ispec-dev/ispec/api/ispec/v1"
	"github.com/ispec-dev/ispec/spec"
	"github.com/ispec-dev/ispec/wire"
)

// LockOptions are the choices of one Lock call.
type LockOptions struct {
	// Upgrade names the Python packages that may move; every other keeps
	// its pin in the spec's lock file.
	Upgrade []string
	// Check asks what drifted from the spec's lock file instead of a lock.
	Check bool
	// Pylock asks for the Python pins as a PEP 751 pylock.toml too.
	Pylock bool
}

// LockResult is the server's answer: the lock file's bytes (and the
// pylock.toml's), or with Check what drifted.
type LockResult struct {
	Lock, Pylock []byte
	Drift        []string
	Platforms    []string
}

// Lock asks the server for img's lock, as `ispec lock` makes it locally.
// It sends the spec, its lock file and the files pip reads with their
// content, copied files by digest only, and secret files empty: the
// server never uses a caller's secrets. Nothing is written here.
func (c *Client) Lock(ctx context.Context, img *spec.Image, opts LockOptions) (*LockResult, error) {
	u, err := collect(img)
	if err != nil {
		return nil, fmt.Errorf("%s: reading its files: %w", img.File, err)
	}
	up, err := u.build(false)
	if err != nil {
		return nil, fmt.Errorf("%s: reading its files: %w", img.File, err)
	}
	resp, err := c.api.Lock(ctx, &apiv1.LockRequest{Input: wire.Input(up), UpgradePackages: opts.Upgrade, Check: opts.Check, Pylock: opts.Pylock})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, c.callError(err)
	}
	return &LockResult{Lock: resp.GetLock(), Pylock: resp.GetPylock(), Drift: resp.GetDrift(), Platforms: resp.GetPlatforms()}, nil
}

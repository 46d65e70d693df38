package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/ispec-dev/ispec/builder"
	"github.com/ispec-dev/ispec/client"
	"github.com/ispec-dev/ispec/locker"
	"github.com/ispec-dev/ispec/pylock"
	"github.com/ispec-dev/ispec/spec"
)

// localLocker locks with this machine's registry client and BuildKit.
type localLocker struct{ l *locker.Locker }

// newLocalLocker returns the locker cfg describes and what closes its
// BuildKit connection.
func newLocalLocker(cfg *config) (*localLocker, func(), error) {
	r, err := newRemote(cfg)
	if err != nil {
		return nil, nil, err
	}
	var netrc []byte
	if cfg.PipNetrc != "" {
		if netrc, err = os.ReadFile(cfg.PipNetrc); err != nil {
			return nil, nil, usageError{fmt.Errorf("pip-netrc: reading %s: %w", cfg.PipNetrc, err)}
		}
	}
	bk := &lazyBuilder{cfg: cfg}
	l, err := locker.New(r, locker.WithPython(bk), locker.WithPipNetrc(netrc))
	if err != nil {
		return nil, nil, err
	}
	return &localLocker{l: l}, bk.close, nil
}

func (ll *localLocker) lock(ctx context.Context, img *spec.Image, old *spec.Lock, req lockRequest) (*lockAnswer, error) {
	if req.check {
		drift, err := ll.l.Check(ctx, img, old, req.upgrade)
		return &lockAnswer{drift: drift}, err
	}
	fresh, err := ll.l.Lock(ctx, img, old, req.upgrade)
	if err != nil {
		return nil, err
	}
	ans := &lockAnswer{}
	if ans.lock, err = spec.EncodeLock(fresh); err != nil {
		return nil, err
	}
	if req.pylockFile != "" {
		if ans.pylock, err = locker.Pylock(fresh); err != nil {
			return nil, fmt.Errorf("--pylock %s: %w", req.pylockFile, err)
		}
	}
	return ans, nil
}

// lazyBuilder resolves Python requirements with BuildKit, connecting on
// first use (a spec without Python packages never connects).
type lazyBuilder struct {
	cfg *config
	mu  sync.Mutex
	b   *builder.Builder
}

func (lb *lazyBuilder) close() {
	if lb.b != nil {
		lb.b.Close()
	}
}

// ResolvePython implements locker.PythonResolver.
func (lb *lazyBuilder) ResolvePython(ctx context.Context, img *spec.Image, opts builder.ResolveOptions) ([]pylock.Pin, error) {
	lb.mu.Lock()
	if lb.b == nil {
		addr := ""
		if list := nonEmpty(strings.Split(lb.cfg.BuildkitAddr, ",")...); len(list) > 0 {
			addr = list[0]
		}
		b, err := builder.New(ctx, builder.Options{Addr: addr, TLS: lb.cfg.BuildkitTLS, Version: ispecVersion()})
		if err != nil {
			lb.mu.Unlock()
			return nil, err
		}
		lb.b = b
	}
	b := lb.b
	lb.mu.Unlock()
	return b.ResolvePython(ctx, img, opts)
}

// remoteLocker locks through a server's Lock call.
type remoteLocker struct{ c *client.Client }

func (rl *remoteLocker) lock(ctx context.Context, img *spec.Image, _ *spec.Lock, req lockRequest) (*lockAnswer, error) {
	res, err := rl.c.Lock(ctx, img, client.LockOptions{Upgrade: req.upgrade, Check: req.check, Pylock: req.pylockFile != ""})
	if err != nil {
		return nil, err
	}
	return &lockAnswer{lock: res.Lock, pylock: res.Pylock, drift: res.Drift}, nil
}

package ensure

import (
	"context"
	"fmt"
	"sync"

	"github.com/ispec-dev/ispec/cache"
)

// Locker takes a tag's build lock, so that one build of a tag runs at a
// time among the callers that share the Locker's backend.
type Locker interface {
	// Lock takes the build lock of ref, waiting while another holds it
	// (calling wait once, with a description of the holder where known,
	// when it must wait) until it is free or ctx ends. The returned
	// context ends when ctx does or when the lock is lost (a lease that
	// could not be renewed): a build under it stops before it pushes.
	// release frees the lock.
	Lock(ctx context.Context, ref string, wait func(holder string)) (held context.Context, release func() error, err error)
}

// FileLocker is the host-wide lock of the CLI: a file lock per tag under a
// cache dir (cache.LockTag). The operating system frees it when the
// process dies.
type FileLocker struct {
	// Dir is the cache dir the lock files live under.
	Dir string
}

// Lock implements Locker.
func (l FileLocker) Lock(ctx context.Context, ref string, wait func(holder string)) (context.Context, func() error, error) {
	unlock, err := cache.LockTag(ctx, l.Dir, ref, cache.OnWait(func(pid int) {
		if wait == nil {
			return
		}
		holder := "another process"
		if pid > 0 {
			holder = fmt.Sprintf("pid %d", pid)
		}
		wait(holder)
	}))
	if err != nil {
		return nil, nil, err
	}
	return ctx, unlock, nil
}

// MemLocker is an in-process lock per tag, for a server whose replicas do
// not share a lock backend. The zero value is ready to use.
type MemLocker struct {
	mu   sync.Mutex
	held map[string]chan struct{} // closed when released
}

// Lock implements Locker. Holders are described by their build's ref.
func (l *MemLocker) Lock(ctx context.Context, ref string, wait func(holder string)) (context.Context, func() error, error) {
	waited := false
	for {
		l.mu.Lock()
		if l.held == nil {
			l.held = map[string]chan struct{}{}
		}
		ch, busy := l.held[ref]
		if !busy {
			done := make(chan struct{})
			l.held[ref] = done
			l.mu.Unlock()
			var once sync.Once
			return ctx, func() error {
				once.Do(func() {
					l.mu.Lock()
					delete(l.held, ref)
					l.mu.Unlock()
					close(done)
				})
				return nil
			}, nil
		}
		l.mu.Unlock()
		if !waited && wait != nil {
			waited = true
			wait("another build in this process")
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("locking %s: %w", ref, ctx.Err())
		}
	}
}

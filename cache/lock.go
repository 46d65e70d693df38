package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gofrs/flock"
)

// lockPoll is how often a waiting LockTag tries the lock again.
const lockPoll = 50 * time.Millisecond

// LockPath returns the lock file LockTag uses for ref under dir:
// dir/locks/<sha256 of ref>.lock.
func LockPath(dir, ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return filepath.Join(dir, "locks", hex.EncodeToString(sum[:])+".lock")
}

// LockOption configures LockTag.
type LockOption func(*lockOptions)

type lockOptions struct {
	onWait func(pid int)
}

// OnWait sets a function LockTag calls once when the lock is held by
// another process and it must wait, with the holder's pid (0 when it is not
// known).
//
// The default calls nothing.
func OnWait(fn func(pid int)) LockOption {
	return func(o *lockOptions) { o.onWait = fn }
}

// LockTag takes the host-wide lock for building ref, waiting until it is
// free or ctx ends. Processes (and goroutines) locking the same ref under
// the same dir run one at a time. The holder writes its pid into the lock
// file. The lock is released by unlock, or by the operating system when the
// process dies; the lock file stays in place.
func LockTag(ctx context.Context, dir, ref string, opts ...LockOption) (unlock func() error, err error) {
	var o lockOptions
	for _, opt := range opts {
		opt(&o)
	}
	path := LockPath(dir, ref)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("locking %s: %w", ref, err)
	}
	fl := flock.New(path)
	ok, err := fl.TryLock()
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", ref, err)
	}
	if !ok {
		if o.onWait != nil {
			o.onWait(lockHolder(path))
		}
		ok, err = fl.TryLockContext(ctx, lockPoll)
		if err != nil {
			return nil, fmt.Errorf("locking %s: %w", ref, err)
		}
		if !ok {
			return nil, fmt.Errorf("locking %s: lock not taken", ref)
		}
	}
	// The pid is a hint for waiters; failing to write it changes nothing.
	if f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0); err == nil {
		fmt.Fprintf(f, "%d\n", os.Getpid())
		f.Close()
	}
	return func() error {
		if err := fl.Unlock(); err != nil {
			return fmt.Errorf("unlocking %s: %w", ref, err)
		}
		return nil
	}, nil
}

// lockHolder reads the pid a holder wrote into a lock file; 0 when unknown.
func lockHolder(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

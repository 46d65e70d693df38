package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
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

// LockTag takes the host-wide lock for building ref, waiting until it is
// free or ctx ends. Processes (and goroutines) locking the same ref under
// the same dir run one at a time. The lock is released by unlock, or by the
// operating system when the process dies; the lock file stays in place.
func LockTag(ctx context.Context, dir, ref string) (unlock func() error, err error) {
	path := LockPath(dir, ref)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("locking %s: %w", ref, err)
	}
	fl := flock.New(path)
	ok, err := fl.TryLockContext(ctx, lockPoll)
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", ref, err)
	}
	if !ok {
		return nil, fmt.Errorf("locking %s: lock not taken", ref)
	}
	return func() error {
		if err := fl.Unlock(); err != nil {
			return fmt.Errorf("unlocking %s: %w", ref, err)
		}
		return nil
	}, nil
}

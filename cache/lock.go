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

	"github.com/ispec-dev/ispec/internal/clock"
)

// lockPoll is how often a waiting LockTag tries the lock again.
const lockPoll = 50 * time.Millisecond

// LockPath returns the lock file LockTag uses for ref under dir:
// dir/locks/<sha256 of ref>.lock.
func LockPath(dir, ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return filepath.Join(dir, "locks", hex.EncodeToString(sum[:])+".lock")
}

// LockOption changes how LockTag waits.
type LockOption func(*lockOptions)

type lockOptions struct {
	onWait func(pid int)
	clock  clock.Clock
}

// LockClock has LockTag wait between its tries of a held lock on c (a
// test's fake clock). A nil c is ignored.
//
// The default is the system clock.
func LockClock(c clock.Clock) LockOption {
	return func(o *lockOptions) {
		if c != nil {
			o.clock = c
		}
	}
}

// OnWait has LockTag call f once when another holder has the lock, before
// it starts waiting, with the holder's process id (0 when unknown). A nil
// f is ignored.
func OnWait(f func(pid int)) LockOption {
	return func(o *lockOptions) {
		if f != nil {
			o.onWait = f
		}
	}
}

// LockTag takes the host-wide lock for building ref, waiting until it is
// free or ctx ends. Processes (and goroutines) locking the same ref under
// the same dir run one at a time. The lock is released by unlock, or by the
// operating system when the process dies; the lock file stays in place and
// holds the process id of the holder while it is held.
func LockTag(ctx context.Context, dir, ref string, opts ...LockOption) (unlock func() error, err error) {
	o := lockOptions{clock: clock.Real{}}
	for _, opt := range opts {
		opt(&o)
	}
	path := LockPath(dir, ref)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("locking %s: %w", ref, err)
	}
	fl := flock.New(path)
	ok, err := fl.TryLock()
	if err == nil && !ok {
		if o.onWait != nil {
			o.onWait(lockHolder(path))
		}
		ok, err = retryLock(ctx, fl, o.clock)
	}
	if err != nil {
		return nil, fmt.Errorf("locking %s: %w", ref, err)
	}
	if !ok {
		return nil, fmt.Errorf("locking %s: lock not taken", ref)
	}
	writeHolder(path, os.Getpid())
	return func() error {
		writeHolder(path, 0)
		if err := fl.Unlock(); err != nil {
			return fmt.Errorf("unlocking %s: %w", ref, err)
		}
		return nil
	}, nil
}

// retryLock tries fl every lockPoll on clk until it is taken or ctx
// ends.
func retryLock(ctx context.Context, fl *flock.Flock, clk clock.Clock) (bool, error) {
	for {
		t := clk.NewTimer(lockPoll)
		select {
		case <-ctx.Done():
			t.Stop()
			return false, ctx.Err()
		case <-t.C():
		}
		if ok, err := fl.TryLock(); ok || err != nil {
			return ok, err
		}
	}
}

// writeHolder records pid in the lock file (0 empties it). It is a hint
// for waiters, so failures are ignored.
func writeHolder(path string, pid int) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return
	}
	defer f.Close()
	if err := f.Truncate(0); err != nil || pid == 0 {
		return
	}
	_, _ = f.WriteAt([]byte(strconv.Itoa(pid)+"\n"), 0)
}

// lockHolder returns the process id recorded in a lock file, 0 when there
// is none.
func lockHolder(path string) int {
	dt, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(dt)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

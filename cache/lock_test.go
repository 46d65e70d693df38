package cache

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ispec-dev/ispec/internal/clock"
)

func removeAndMkdir(path string) error {
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	return os.Mkdir(path, 0o755)
}

// contenders counts the goroutines that wait for a lock (OnWait was
// called, the lock not taken yet) and those done with it, so that a
// holder keeps the lock until every other goroutine tries it.
type contenders struct {
	mu            sync.Mutex
	waiting, done int
	changed       chan struct{} // closed and replaced on each change
}

func (c *contenders) add(waiting, done int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waiting += waiting
	c.done += done
	close(c.changed)
	c.changed = make(chan struct{})
}

// awaitOthers waits until the n-1 other goroutines wait or are done.
func (c *contenders) awaitOthers(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		c.mu.Lock()
		ok, ch := c.waiting+c.done == n-1, c.changed
		c.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-timeout:
			t.Error("the other goroutines did not all wait for the lock within 10s")
			return
		}
	}
}

func TestLockTagSerializesGoroutines(t *testing.T) {
	dir := t.TempDir()
	const n = 4
	var inside, overlaps atomic.Int64
	c := &contenders{changed: make(chan struct{})}
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			waited := 0
			unlock, err := LockTag(ctxTimeout(t, 10*time.Second), dir, "registry.example/app:abc", OnWait(func(int) { waited = 1; c.add(1, 0) }))
			if err != nil {
				t.Error(err)
				return
			}
			c.add(-waited, 0)
			if inside.Add(1) > 1 {
				overlaps.Add(1)
			}
			// Held until every other goroutine tries the lock.
			c.awaitOthers(t, n)
			inside.Add(-1)
			c.add(0, 1)
			if err := unlock(); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := overlaps.Load(); n > 0 {
		t.Errorf("%d overlapping holders", n)
	}
	if _, err := os.Stat(LockPath(dir, "registry.example/app:abc")); err != nil {
		t.Errorf("lock file: %v", err)
	}
	if filepath.Dir(LockPath(dir, "x")) != filepath.Join(dir, "locks") {
		t.Errorf("LockPath = %s, want it under locks/", LockPath(dir, "x"))
	}
}

// awaitTimer waits until a timer is pending on clk (the waiter polls
// again), failing after 10s.
func awaitTimer(t *testing.T, clk *clock.Fake) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		ch := clk.Changed()
		if clk.Waiters() == 1 {
			return
		}
		select {
		case <-ch:
		case <-timeout:
			t.Fatal("the waiter armed no timer within 10s")
		}
	}
}

func TestLockTagOtherTagsAndCancel(t *testing.T) {
	dir := t.TempDir()
	unlock, err := LockTag(context.Background(), dir, "r.example/a:1")
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	// Another tag is independent.
	u2, err := LockTag(ctxTimeout(t, time.Second), dir, "r.example/a:2")
	if err != nil {
		t.Fatalf("locking another tag: %v", err)
	}
	u2()
	// The same tag waits until the context ends.
	start := time.Now()
	_, err = LockTag(ctxTimeout(t, 150*time.Millisecond), dir, "r.example/a:1")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("LockTag on a held tag = %v, want context.DeadlineExceeded", err)
	}
	if took := time.Since(start); took < 100*time.Millisecond || took > 2*time.Second {
		t.Errorf("waited %v", took)
	}
}

// TestLockTagTwoProcesses holds the lock in a child process and checks that
// the parent waits for it, and gets it when the child dies.
func TestLockTagTwoProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	const ref = "registry.example/app:two-procs"
	for _, kill := range []bool{false, true} {
		cmd := helperCommand(t, "lock-holder", dir, ref)
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil || line != "locked\n" {
			t.Fatalf("child said %q, %v; stderr: %s", line, err, cmd.Stderr)
		}
		var waits []int
		onWait := OnWait(func(pid int) { waits = append(waits, pid) })
		if _, err := LockTag(ctxTimeout(t, 200*time.Millisecond), dir, ref, onWait); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("lock held by another process was taken: %v", err)
		}
		if len(waits) != 1 || waits[0] != cmd.Process.Pid {
			t.Errorf("OnWait saw %v, want the holder's pid %d once", waits, cmd.Process.Pid)
		}
		release := time.Now()
		if kill {
			cmd.Process.Kill()
		} else {
			stdin.Close()
		}
		waits = nil
		unlock, err := LockTag(ctxTimeout(t, 5*time.Second), dir, ref, onWait)
		if err != nil {
			t.Fatalf("after the holder let go (killed=%v): %v", kill, err)
		}
		if len(waits) > 1 {
			t.Errorf("OnWait called %d times, want at most once", len(waits))
		}
		if took := time.Since(release); took > 2*time.Second {
			t.Errorf("took %v to get the lock after release", took)
		}
		unlock()
		cmd.Wait()
	}
}

// TestLockTagOnWait: OnWait is called only when the lock is held, once,
// with the holder's pid; a free lock holds no pid once released.
func TestLockTagOnWait(t *testing.T) {
	dir := t.TempDir()
	const ref = "r.example/app:wait"
	called := 0
	unlock, err := LockTag(context.Background(), dir, ref, OnWait(func(int) { called++ }), OnWait(nil))
	if err != nil {
		t.Fatal(err)
	}
	if called != 0 {
		t.Errorf("OnWait called %d times for a free lock", called)
	}
	if pid := lockHolder(LockPath(dir, ref)); pid != os.Getpid() {
		t.Errorf("lock file names pid %d, want ours (%d)", pid, os.Getpid())
	}
	got := make(chan int, 4)
	done := make(chan error, 1)
	clk := clock.NewFake(time.Now())
	go func() {
		u, err := LockTag(ctxTimeout(t, 10*time.Second), dir, ref, OnWait(func(pid int) { got <- pid }), LockClock(clk))
		if err == nil {
			err = u()
		}
		done <- err
	}()
	if pid := <-got; pid != os.Getpid() {
		t.Errorf("OnWait pid = %d, want %d", pid, os.Getpid())
	}
	// The waiter tries the held lock three more times, one poll apart.
	for i := 0; i < 3; i++ {
		awaitTimer(t, clk)
		clk.Advance(lockPoll)
	}
	awaitTimer(t, clk)
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	clk.Advance(lockPoll)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiter did not take the released lock on its next try")
	}
	if len(got) != 0 {
		t.Errorf("OnWait called again: %d more", len(got))
	}
	if pid := lockHolder(LockPath(dir, ref)); pid != 0 {
		t.Errorf("released lock names pid %d", pid)
	}
}

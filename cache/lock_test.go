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
)

func removeAndMkdir(path string) error {
	if err := os.Remove(path); err != nil && !os.IsNotExist(err) {
		return err
	}
	return os.Mkdir(path, 0o755)
}

func TestLockTagSerializesGoroutines(t *testing.T) {
	dir := t.TempDir()
	var inside, overlaps atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			unlock, err := LockTag(ctxTimeout(t, 10*time.Second), dir, "registry.example/app:abc")
			if err != nil {
				t.Error(err)
				return
			}
			if inside.Add(1) > 1 {
				overlaps.Add(1)
			}
			time.Sleep(20 * time.Millisecond)
			inside.Add(-1)
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
	done := make(chan error)
	go func() {
		u, err := LockTag(ctxTimeout(t, 5*time.Second), dir, ref, OnWait(func(pid int) { got <- pid }))
		if err == nil {
			err = u()
		}
		done <- err
	}()
	if pid := <-got; pid != os.Getpid() {
		t.Errorf("OnWait pid = %d, want %d", pid, os.Getpid())
	}
	time.Sleep(3 * lockPoll)
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("OnWait called again: %d more", len(got))
	}
	if pid := lockHolder(LockPath(dir, ref)); pid != 0 {
		t.Errorf("released lock names pid %d", pid)
	}
}

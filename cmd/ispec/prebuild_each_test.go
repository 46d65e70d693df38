package main

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/ispec-dev/ispec/spec"
)

// each builds every spec, never more than jobs at once, and after an
// interrupt starts none: each is recorded as interrupted.
func TestEachLimitsAndStopsOnInterrupt(t *testing.T) {
	paths := []string{"a", "b", "c", "d", "e", "f"}
	newRun := func(ctx context.Context) *buildRun {
		var errb bytes.Buffer
		return newBuildRun(ctx, buildFlags{}, paths, make([]*spec.Image, len(paths)), &bytes.Buffer{}, &errb, newMessages(&errb, "plain"))
	}
	r := newRun(context.Background())
	var running, most atomic.Int32
	var mu sync.Mutex
	ran := map[int]bool{}
	gate := make(chan struct{})
	go func() {
		for range paths {
			gate <- struct{}{}
		}
	}()
	r.each(2, func(i int) {
		n := running.Add(1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		<-gate
		mu.Lock()
		ran[i] = true
		mu.Unlock()
		running.Add(-1)
		r.finish(i, exitOK, "", func(*specRecord) {})
	})
	if len(ran) != len(paths) || most.Load() > 2 {
		t.Errorf("ran %v with at most %d at once; want all %d, at most 2", ran, most.Load(), len(paths))
	}

	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(&interruptedError{sig: syscall.SIGINT})
	r = newRun(ctx)
	r.each(2, func(i int) { t.Errorf("spec %d started after the interrupt", i) })
	for i, c := range r.codes {
		if c != exitSignalBase+int(syscall.SIGINT) {
			t.Errorf("spec %d: code %d, want %d", i, c, exitSignalBase+int(syscall.SIGINT))
		}
	}
}

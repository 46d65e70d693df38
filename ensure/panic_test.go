package ensure

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// syncBuffer is a log destination safe for the build goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestPanickingBuildFailsThatBuildOnly(t *testing.T) {
	reg := newFakeRegistry()
	const bad = "reg.example/bad:0123456789abcdef0123456789abcdef"
	b := &fakeBuilder{reg: reg, panic: bad}
	var logs syncBuffer
	p := newTestPipeline(t, reg, b, WithLogger(slog.New(slog.NewTextHandler(&logs, nil))), WithFailureTTL(0))
	var ev events
	_, err := p.Ensure(context.Background(), image(bad), Request{Sink: ev.sink, Caller: "alice"})
	var pe *PanicError
	if !errors.As(err, &pe) || ClassOf(err) != ClassInternal {
		t.Fatalf("err = %v (class %v), want a PanicError of class internal", err, ClassOf(err))
	}
	if strings.Contains(err.Error(), "builder bug") || strings.Contains(err.Error(), "goroutine") {
		t.Errorf("the caller's error carries the panic or its stack: %q", err)
	}
	if k := ev.list(); k[len(k)-1] != KindFailed {
		t.Errorf("events = %v, want the build's failure last", k)
	}
	if l := logs.String(); !strings.Contains(l, "builder bug") || !strings.Contains(l, "fakeBuilder") {
		t.Errorf("the log lacks the panic and its stack:\n%s", l)
	}
	// The pipeline goes on: the lock was released, other builds run.
	if _, err := p.Ensure(context.Background(), image(testRef), Request{}); err != nil {
		t.Fatalf("a build after the panic: %v", err)
	}
	b.panic = ""
	if _, err := p.Ensure(context.Background(), image(bad), Request{}); err != nil {
		t.Fatalf("the same tag again after the panic: %v", err)
	}
}

func TestBuildRecordsWhoStartedAndJoined(t *testing.T) {
	reg := newFakeRegistry()
	b := &fakeBuilder{reg: reg, gate: make(chan struct{})}
	p := newTestPipeline(t, reg, b)
	var wg sync.WaitGroup
	in := make(arrivals, 5)
	call := func(who string) {
		defer wg.Done()
		if _, err := p.Ensure(context.Background(), image(testRef), Request{Caller: who, Sink: in.sink(nil)}); err != nil {
			t.Error(err)
		}
	}
	wg.Add(1)
	go call("alice")
	in.await(t, 1)
	for _, who := range []string{"bob", "alice", "bob", ""} {
		wg.Add(1)
		go call(who)
	}
	in.await(t, 4)
	close(b.gate)
	wg.Wait()
	bs := p.Builds()
	if len(bs) != 1 {
		t.Fatalf("%d builds, want 1", len(bs))
	}
	bi := bs[0]
	if bi.StartedBy != "alice" || len(bi.JoinedBy) != 1 || bi.JoinedBy[0] != "bob" {
		t.Errorf("started by %q, joined by %q; want alice, [bob]", bi.StartedBy, bi.JoinedBy)
	}
	if !bi.Involves("alice") || !bi.Involves("bob") || bi.Involves("carol") {
		t.Errorf("Involves: alice %v, bob %v, carol %v", bi.Involves("alice"), bi.Involves("bob"), bi.Involves("carol"))
	}
}

package ensure

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/moby/buildkit/client"
	godigest "github.com/opencontainers/go-digest"

	"github.com/ispec-dev/ispec/builder"
	"github.com/ispec-dev/ispec/spec"
)

// loudBuilder logs n bytes, tells logged, waits for gate, then runs
// BeforePush and pushes unless it fails.
type loudBuilder struct {
	reg    *fakeRegistry
	n      int
	logged chan struct{}
	gate   chan struct{}
}

func (b *loudBuilder) Build(ctx context.Context, img *spec.Image, opts builder.BuildOptions) (*builder.Result, error) {
	d := godigest.FromString("step")
	line := []byte(strings.Repeat("y", 4095) + "\n")
	for sent := 0; sent < b.n; sent += len(line) {
		opts.Progress.Publish(&client.SolveStatus{
			Vertexes: []*client.Vertex{{Digest: d, Name: "[ispec] commands[0] make"}},
			Logs:     []*client.VertexLog{{Vertex: d, Data: line}},
		})
	}
	if b.logged != nil {
		close(b.logged)
	}
	if b.gate != nil {
		select {
		case <-b.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if opts.BeforePush != nil {
		if err := opts.BeforePush(ctx); err != nil {
			return nil, err
		}
	}
	dg := digestOf(opts.Ref)
	b.reg.push(opts.Ref, dg)
	return &builder.Result{Ref: opts.Ref, Digest: dg.String()}, nil
}

// logBytes counts the log bytes of a caller's progress events.
type logBytes struct {
	mu       sync.Mutex
	n        int
	text     bytes.Buffer
	progress int
	want     int           // when set, all is closed once n reaches it
	all      chan struct{} // see want
}

func (l *logBytes) sink(ev Event) {
	if ev.Kind != KindProgress || ev.Status == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.progress++
	for _, lg := range ev.Status.Logs {
		l.n += len(lg.Data)
		if l.text.Len() < 200 {
			l.text.Write(lg.Data[:min(len(lg.Data), 200)])
		}
	}
	if l.all != nil && l.n >= l.want {
		close(l.all)
		l.all = nil
	}
}

func (l *logBytes) bytes() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n
}

func TestALateJoinerGetsCompactProgressAndAFinishedBuildKeepsNone(t *testing.T) {
	const total, limit = 8 << 20, 64 << 10
	reg := newFakeRegistry()
	b := &loudBuilder{reg: reg, n: total, logged: make(chan struct{}), gate: make(chan struct{})}
	p := newTestPipeline(t, reg, b, WithProgressLimit(limit))
	first := logBytes{want: total, all: make(chan struct{})}
	all := first.all
	done := make(chan error, 1)
	go func() {
		_, err := p.Ensure(context.Background(), image(testRef), Request{Sink: first.sink})
		done <- err
	}()
	select {
	case <-b.logged:
	case <-time.After(30 * time.Second):
		t.Fatal("the build did not log")
	}
	// The caller that follows from the start gets every byte.
	select {
	case <-all:
	case <-time.After(30 * time.Second):
		t.Fatalf("the first caller got %d of %d log bytes within 30s", first.bytes(), total)
	}
	tag, _ := name.NewTag(testRef)
	var late logBytes
	joined := make(chan error, 1)
	in := make(arrivals, 1)
	go func() {
		_, err := p.Join(context.Background(), tag, Request{Sink: in.sink(late.sink)})
		joined <- err
	}()
	in.await(t, 1)
	close(b.gate)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := <-joined; err != nil {
		t.Fatal(err)
	}
	if n := late.bytes(); n > limit+256<<10+100 || n == 0 {
		t.Errorf("a late joiner got %d log bytes of %d; want at most the %d limit plus what was not folded yet", n, total, limit)
	}
	if !strings.Contains(late.text.String(), " bytes dropped\n") {
		t.Errorf("a late joiner's logs do not say how many bytes were dropped: %.80q", late.text.String())
	}
	builds := p.Builds()
	if len(builds) != 1 {
		t.Fatalf("builds %+v", builds)
	}
	var watched logBytes
	var kinds []Kind
	if _, err := p.Watch(context.Background(), builds[0].ID, func(ev Event) { kinds = append(kinds, ev.Kind); watched.sink(ev) }); err != nil {
		t.Fatal(err)
	}
	if watched.progress != 0 {
		t.Errorf("a finished build replayed %d progress events to Watch (%v); want its events only", watched.progress, kinds)
	}
	if len(kinds) == 0 || kinds[len(kinds)-1] != KindDone {
		t.Errorf("Watch of a finished build: %v", kinds)
	}
}

// leaseLocker hands out a lease whose check before the push fails while
// lost is set.
type leaseLocker struct{ lost atomic.Bool }

func (l *leaseLocker) Lock(ctx context.Context, ref string, wait func(string)) (context.Context, func() error, error) {
	held := ContextWithLease(ctx, Lease{Fence: 7, Owner: "test", Confirm: func(context.Context) (int64, error) {
		if l.lost.Load() {
			return 0, fmt.Errorf("%w: the lease of %s is held by someone else", ErrLeaseLost, ref)
		}
		return 8, nil
	}})
	return held, func() error { return nil }, nil
}

func TestALostLeaseStopsThePushAndIsNotRemembered(t *testing.T) {
	reg := newFakeRegistry()
	b := &loudBuilder{reg: reg, n: 1}
	lk := &leaseLocker{}
	lk.lost.Store(true)
	p := newTestPipeline(t, reg, b, WithLocker(lk), WithFailureTTL(time.Hour))
	_, err := p.Ensure(context.Background(), image(testRef), Request{})
	if !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("Ensure = %v, want ErrLeaseLost", err)
	}
	if reg.Lookup(context.Background(), name.MustParseReference(testRef).(name.Tag)).Digest.Hex != "" {
		t.Error("a build that lost its lease pushed")
	}
	// Not remembered: the next caller builds, and with its lease pushes.
	lk.lost.Store(false)
	res, err := p.Ensure(context.Background(), image(testRef), Request{})
	if err != nil || res.Outcome != OutcomeBuilt {
		t.Fatalf("the next call = %+v, %v; want a build (a lost lease is not remembered)", res, err)
	}
	if res.Fence != 8 {
		t.Errorf("result fence %d, want 8: the fence confirmed before the push", res.Fence)
	}
}

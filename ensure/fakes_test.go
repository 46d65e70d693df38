package ensure

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/client"

	"github.com/ispec-dev/ispec/builder"
	"github.com/ispec-dev/ispec/cache"
	"github.com/ispec-dev/ispec/spec"
)

// fakeRegistry is a Lookup over a map of pushed tags that counts lookups.
type fakeRegistry struct {
	mu      sync.Mutex
	tags    map[string]v1.Hash
	lookups map[string]int
	down    bool
}

func newFakeRegistry() *fakeRegistry {
	return &fakeRegistry{tags: map[string]v1.Hash{}, lookups: map[string]int{}}
}

func (r *fakeRegistry) Lookup(ctx context.Context, ref name.Tag) cache.Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.lookups[ref.Name()]++
	if r.down {
		return cache.Result{Ref: ref, Err: &cache.UnknownError{Ref: ref.Name(), Reason: cache.ReasonUnavailable, Status: 503, Message: "down"}}
	}
	if d, ok := r.tags[ref.Name()]; ok {
		return cache.Result{Ref: ref, State: cache.Exists, Digest: d}
	}
	return cache.Result{Ref: ref, State: cache.Absent}
}

func (r *fakeRegistry) push(ref string, d v1.Hash) {
	r.mu.Lock()
	r.tags[ref] = d
	r.mu.Unlock()
}

func (r *fakeRegistry) lookupsOf(ref string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lookups[ref]
}

// fakeBuilder "builds" by pushing a digest derived from the ref into its
// registry, after gate opens (when set), or fails with err.
type fakeBuilder struct {
	reg   *fakeRegistry
	gate  chan struct{}
	start chan string // told of each build's ref, when set
	err   error
	panic string // a ref whose build panics

	mu    sync.Mutex
	calls []builder.BuildOptions
}

func (b *fakeBuilder) Build(ctx context.Context, img *spec.Image, opts builder.BuildOptions) (*builder.Result, error) {
	b.mu.Lock()
	b.calls = append(b.calls, opts)
	b.mu.Unlock()
	if b.start != nil {
		b.start <- opts.Ref
	}
	opts.Progress.Publish(&client.SolveStatus{Vertexes: []*client.Vertex{{Name: "[ispec] step"}}})
	if b.gate != nil {
		select {
		case <-b.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if b.err != nil {
		return nil, b.err
	}
	if b.panic == opts.Ref {
		panic("builder bug")
	}
	d := digestOf(opts.Ref)
	b.reg.push(opts.Ref, d)
	return &builder.Result{Ref: opts.Ref, Digest: d.String()}, nil
}

func (b *fakeBuilder) builds() []builder.BuildOptions {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]builder.BuildOptions{}, b.calls...)
}

func digestOf(ref string) v1.Hash {
	h, _, _ := v1.SHA256(strings.NewReader(ref))
	return h
}

// countingLocker is a MemLocker that counts locks taken.
type countingLocker struct {
	MemLocker
	mu    sync.Mutex
	taken int
}

func (l *countingLocker) Lock(ctx context.Context, ref string, wait func(string)) (context.Context, func() error, error) {
	held, release, err := l.MemLocker.Lock(ctx, ref, wait)
	if err == nil {
		l.mu.Lock()
		l.taken++
		l.mu.Unlock()
	}
	return held, release, err
}

// recorder collects Record calls.
type recorder struct {
	mu   sync.Mutex
	refs []string
}

func (r *recorder) Record(ref name.Tag, d v1.Hash) error {
	r.mu.Lock()
	r.refs = append(r.refs, ref.Name()+"@"+d.String())
	r.mu.Unlock()
	return nil
}

// events collects a call's event kinds.
type events struct {
	mu      sync.Mutex
	kinds   []Kind
	all     []Event
	changed chan struct{} // closed on the next event, when a test waits
}

func (e *events) sink(ev Event) {
	e.mu.Lock()
	e.kinds = append(e.kinds, ev.Kind)
	e.all = append(e.all, ev)
	if e.changed != nil {
		close(e.changed)
		e.changed = nil
	}
	e.mu.Unlock()
}

// await waits for an event of kind k, failing after 10s.
func (e *events) await(t *testing.T, k Kind) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		e.mu.Lock()
		if contains(e.kinds, k) {
			e.mu.Unlock()
			return
		}
		if e.changed == nil {
			e.changed = make(chan struct{})
		}
		ch := e.changed
		e.mu.Unlock()
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("no %s event within 10s; got %v", k, e.list())
		}
	}
}

// arrivals tells of each call that started or joined a build (its
// Accepted or Joined event), so that a test waits until n callers are
// in instead of polling the pipeline.
type arrivals chan struct{}

// sink passes each event to next (when set) and tells of arrivals.
func (a arrivals) sink(next Sink) Sink {
	return func(ev Event) {
		if next != nil {
			next(ev)
		}
		if ev.Kind == KindAccepted || ev.Kind == KindJoined {
			a <- struct{}{}
		}
	}
}

// await waits for n arrivals, failing after 10s.
func (a arrivals) await(t *testing.T, n int) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for i := 0; i < n; i++ {
		select {
		case <-a:
		case <-timeout:
			t.Fatalf("%d of %d callers started or joined a build within 10s", i, n)
		}
	}
}

// awaitChange waits until cond holds, checking it again each time the
// channel changed returns is closed, failing after 10s.
func awaitChange(t *testing.T, what string, changed func() <-chan struct{}, cond func() bool) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		ch := changed()
		if cond() {
			return
		}
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("%s: not within 10s", what)
		}
	}
}

func (e *events) list() []Kind {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Kind{}, e.kinds...)
}

func image(ref string) *spec.Image {
	t, _ := name.NewTag(ref)
	return &spec.Image{File: "spec.yaml", Base: "reg.example/base:1",
		Spec:     &spec.Spec{Name: t.RepositoryStr(), Registry: t.RegistryStr(), Platform: []string{spec.DefaultPlatform}},
		Identity: spec.Identity{Ref: ref, Registry: t.RegistryStr(), Repository: t.RepositoryStr(), Tag: t.TagStr()}}
}

func newTestPipeline(t *testing.T, reg *fakeRegistry, b Builder, opts ...Option) *Pipeline {
	t.Helper()
	base := []Option{WithLookup(reg)}
	if b != nil {
		base = append(base, WithBuilder(b))
	}
	p, err := New(append(base, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var errStep = &builder.StepError{Step: "[ispec] commands[0] false", Log: []string{"boom"}, Err: errors.New("exit code: 1")}

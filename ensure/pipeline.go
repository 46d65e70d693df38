package ensure

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ispec-dev/ispec/builder"
	"github.com/ispec-dev/ispec/cache"
	"github.com/ispec-dev/ispec/internal/clock"
	"github.com/ispec-dev/ispec/internal/replay"
	"github.com/ispec-dev/ispec/spec"
)

// Lookup answers whether a tag exists: exists, absent or unknown
// (cache.Checker).
type Lookup interface {
	Lookup(ctx context.Context, ref name.Tag) cache.Result
}

// Builder builds an image and pushes it, or writes it to opts.Output
// (*builder.Builder).
type Builder interface {
	Build(ctx context.Context, img *spec.Image, opts builder.BuildOptions) (*builder.Result, error)
}

// Recorder records an image that was built and pushed (*cache.Cached
// records it in the local index).
type Recorder interface {
	Record(ref name.Tag, digest v1.Hash) error
}

func emit(r Request, ev Event) {
	if r.Sink != nil {
		if ev.Time.IsZero() {
			ev.Time = time.Now()
		}
		r.Sink(ev)
	}
}

// Pipeline makes images exist: found, or built once and pushed. It is safe
// for concurrent use.
type Pipeline struct {
	lookup     Lookup
	builder    Builder
	locker     Locker
	exchange   Exchange
	recorder   Recorder
	base       context.Context
	timeout    time.Duration
	failureTTL time.Duration
	maxBuilds  int
	maxQueue   int
	netrc      []byte
	history    int
	log        *slog.Logger
	clock      clock.Clock

	progressLimit int // bytes of a build's logs replayed to a late joiner

	cacheMode     builder.CacheMode
	cacheRegistry string

	slots chan struct{} // one per running build when maxBuilds > 0

	mu      sync.Mutex
	flights map[string]*flight // by flightKey: running, or failed within failureTTL
	byID    map[string]*flight // running and the last `history` finished
	recent  []*flight          // finished, oldest first
	active  int                // flights not finished
}

// New returns a pipeline; WithLookup is required.
func New(opts ...Option) (*Pipeline, error) {
	p := &Pipeline{
		locker:   &MemLocker{},
		clock:    clock.Real{},
		base:     context.Background(),
		maxQueue: -1,
		history:  100,
		log:      slog.New(slog.DiscardHandler),
		flights:  map[string]*flight{},
		byID:     map[string]*flight{},

		progressLimit: builder.DefaultProgressLogLimit,
	}
	for _, opt := range opts {
		if err := opt(p); err != nil {
			return nil, fmt.Errorf("ensure: %w", err)
		}
	}
	if p.lookup == nil {
		return nil, errors.New("ensure: a lookup is required (WithLookup)")
	}
	if p.maxBuilds > 0 {
		p.slots = make(chan struct{}, p.maxBuilds)
	}
	return p, nil
}

// Tag returns the tag an image is looked up and pushed under; an image
// without a registry is an ErrNoRegistry error.
func Tag(img *spec.Image) (name.Tag, error) {
	if img.Identity.Registry == "" {
		return name.Tag{}, fmt.Errorf("%s: %w to look %s up in or push it to", img.File, ErrNoRegistry, img.Identity.Ref)
	}
	t, err := name.NewTag(img.Identity.Ref, name.StrictValidation)
	if err != nil {
		return name.Tag{}, fmt.Errorf("%s: %w: %v", img.File, ErrInvalid, err)
	}
	return t, nil
}

// Ensure makes img exist in its registry. A nested spec's parent is made
// to exist first. Unless req.Force, an image that exists is found and
// nothing is built. Otherwise the call starts a build, or joins the build
// of the same tag that runs (or failed within the failure TTL); the build
// takes the tag's lock, looks the tag up again (another process may have
// pushed it meanwhile), builds, pushes and records it. A caller whose ctx
// ends gets its error; the build goes on for the others (see WithContext).
func (p *Pipeline) Ensure(ctx context.Context, img *spec.Image, req Request) (*Result, error) {
	start := time.Now()
	base, err := p.parentBase(ctx, img, req)
	if err != nil {
		return nil, err
	}
	ref, err := Tag(img)
	if err != nil {
		return nil, err
	}
	if !req.Force {
		res, err := p.find(ctx, ref, req, start, "")
		if res != nil || err != nil {
			return res, err
		}
	}
	f, rd, how, err := p.join(ref, img, base, req)
	if err != nil {
		return nil, err
	}
	return p.await(ctx, f, rd, how, req, start)
}

// Join follows the build of ref that runs (or failed within the failure
// TTL) with req's force and no-cache as Ensure would, without the image's
// files: a server answers a caller that sent no file bytes this way, and
// a draining server a caller of a tag it is still building. When no such
// build of ref runs it returns ErrNoBuild and does nothing.
func (p *Pipeline) Join(ctx context.Context, ref name.Tag, req Request) (*Result, error) {
	start := time.Now()
	p.mu.Lock()
	f, rd, how, ok := p.joinable(flightKey(ref.Name(), req), req)
	p.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%s: %w", ref.Name(), ErrNoBuild)
	}
	return p.await(ctx, f, rd, how, req, start)
}

// await follows f for one caller until it ends or the caller leaves. A
// caller that joined a failure the pipeline remembers gets it as a
// *RememberedError, in its Failed event too.
func (p *Pipeline) await(ctx context.Context, f *flight, rd *replay.Reader[Event], how joinKind, req Request, start time.Time) (*Result, error) {
	ref := f.ref
	kind := KindAccepted
	if how != started {
		kind = KindJoined
	}
	emit(req, Event{Kind: kind, Ref: ref.Name(), BuildID: f.id})
	sink := orDrop(req.Sink)
	if how == replayed {
		inner := sink
		sink = func(ev Event) {
			if ev.Kind == KindFailed && ev.Err != nil {
				ev.Err = f.remembered()
			}
			inner(ev)
		}
	}
	err := rd.Follow(ctx, sink)
	f.followed()
	if errors.Is(err, replay.ErrBehind) {
		// Too slow a reader misses events, not its result.
		emit(req, Event{Kind: KindWarning, Ref: ref.Name(), BuildID: f.id, Message: "this caller read the build's events too slowly: some were dropped"})
		err = waitDone(ctx, f)
	}
	if err != nil {
		return nil, fmt.Errorf("waiting for the build of %s: %w", ref.Name(), err)
	}
	<-f.done
	if f.err != nil {
		if how == replayed {
			return nil, f.remembered()
		}
		return nil, f.err
	}
	res := *f.res
	if how != started && res.Outcome == OutcomeBuilt {
		res.Outcome = OutcomeJoined
	}
	res.Duration = time.Since(start)
	emit(req, Event{Kind: KindDone, Ref: ref.Name(), BuildID: f.id, Digest: res.Digest, Result: &res})
	return &res, nil
}

// waitDone waits for f to end, or ctx.
func waitDone(ctx context.Context, f *flight) error {
	select {
	case <-f.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Export builds img into opts.Output: no lookup, no lock, no push. A nested
// spec's parent is still made to exist in its registry, since the image
// builds on its digest.
func (p *Pipeline) Export(ctx context.Context, img *spec.Image, out *builder.Output, req Request) (*Result, error) {
	start := time.Now()
	base, err := p.parentBase(ctx, img, req)
	if err != nil {
		return nil, err
	}
	ref := img.Identity.Ref
	t, err := name.NewTag(ref)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: %v", img.File, ErrInvalid, err)
	}
	if p.builder == nil {
		return nil, fmt.Errorf("building %s: %w: no builder", ref, ErrUnavailable)
	}
	emit(req, Event{Kind: KindBuilding, Ref: ref})
	b, built, err := p.build(ctx, img, base, ref, out, req, func(ev Event) { emit(req, ev) }, nil)
	if err != nil {
		emit(req, Event{Kind: KindFailed, Ref: ref, Err: err})
		return nil, err
	}
	res := &Result{Ref: t, Digest: b, Outcome: OutcomeBuilt, Output: out.String(), Duration: time.Since(start), Daemon: built.Daemon, Python: built.Python}
	emit(req, Event{Kind: KindDone, Ref: ref, Digest: b, Result: res})
	return res, nil
}

// parentBase makes a nested spec's parent exist and returns its ref@digest
// to build on; "" when the base is not a spec.
func (p *Pipeline) parentBase(ctx context.Context, img *spec.Image, req Request) (string, error) {
	if img.Parent == nil {
		return "", nil
	}
	// The parent is only built when absent, whatever the child asks.
	preq := req
	preq.Force = false
	res, err := p.Ensure(ctx, img.Parent, preq)
	if err != nil {
		return "", fmt.Errorf("base spec %s: %w", img.Parent.File, err)
	}
	return res.Pinned(), nil
}

// Find looks ref up as Ensure does before it builds: a result when the
// image exists (req's sink gets Found and Done), neither when it is
// absent, an error when the registry cannot say. A server answers a caller
// that sent no file bytes with it.
func (p *Pipeline) Find(ctx context.Context, ref name.Tag, req Request) (*Result, error) {
	return p.find(ctx, ref, req, time.Now(), "")
}

// find looks ref up: a result when it exists (emitting Found), neither when
// it is absent, an error when the registry cannot say.
func (p *Pipeline) find(ctx context.Context, ref name.Tag, req Request, start time.Time, buildID string) (*Result, error) {
	r := p.lookup.Lookup(ctx, ref)
	switch r.State {
	case cache.Exists:
		src := SourceRegistry
		if r.FromIndex {
			src = SourceIndex
		}
		res := &Result{Ref: ref, Digest: r.Digest, Outcome: OutcomeFound, Source: src, BuildID: buildID, Duration: time.Since(start)}
		emit(req, Event{Kind: KindFound, Ref: ref.Name(), BuildID: buildID, Source: src, Digest: r.Digest})
		if buildID == "" {
			emit(req, Event{Kind: KindDone, Ref: ref.Name(), Digest: r.Digest, Result: res})
		}
		return res, nil
	case cache.Absent:
		return nil, nil
	}
	if r.Err == nil {
		return nil, fmt.Errorf("looking up %s: %w", ref.Name(), ErrUnavailable)
	}
	return nil, r.Err
}

// build runs one BuildKit build, forwarding its progress to emit, and
// returns the digest it pushed or wrote and the builder's result (the
// daemon that built it, what a floating spec installed).
// beforePush (when set) runs once every step succeeded, before the push.
func (p *Pipeline) build(ctx context.Context, img *spec.Image, base, ref string, out *builder.Output, req Request, emit func(Event), beforePush func(context.Context) error) (v1.Hash, *builder.Result, error) {
	// Its one watcher follows from the start: it keeps no logs for late
	// ones (the build's event log does).
	prog := builder.NewProgressLimit(0)
	fed := make(chan struct{})
	statuses := prog.Subscribe(context.Background())
	go func() {
		defer close(fed)
		for s := range statuses {
			emit(Event{Kind: KindProgress, Time: time.Now(), Ref: ref, Status: s})
		}
	}()
	opts, err := builder.WithRegistryCache(builder.BuildOptions{
		Base: base, Ref: ref, Progress: prog, Secrets: req.Secrets, PipNetrc: p.netrc, NoCache: req.NoCache, Output: out,
		BeforePush: beforePush,
	}, img, p.cacheMode, p.cacheRegistry)
	var res *builder.Result
	if err == nil {
		res, err = p.builder.Build(ctx, img, opts)
	}
	prog.Close()
	<-fed
	if err != nil {
		return v1.Hash{}, nil, fmt.Errorf("building %s: %w", ref, err)
	}
	for _, w := range res.Warnings {
		emit(Event{Kind: KindWarning, Time: time.Now(), Ref: ref, Message: w})
	}
	h, err := v1.NewHash(res.Digest)
	if err != nil {
		return v1.Hash{}, nil, fmt.Errorf("building %s: buildkit returned digest %q: %w", ref, res.Digest, err)
	}
	return h, res, nil
}

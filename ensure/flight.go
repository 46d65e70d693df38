package ensure

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ispec-dev/ispec/cache"
	"github.com/ispec-dev/ispec/internal/randid"
	"github.com/ispec-dev/ispec/internal/replay"
	"github.com/ispec-dev/ispec/spec"
)

// flight is one build of one tag, shared by every caller that asks for the
// tag while it runs.
type flight struct {
	id      string
	key     string // flightKey
	ref     name.Tag
	img     *spec.Image
	base    string
	req     Request // the starter's, without its sink
	started time.Time
	log     *replay.Log[Event]
	fold    *eventFold    // the log's: late joiners get its progress compacted
	waiting atomic.Int32  // callers that have not read the log to its end
	settled atomic.Bool   // finished, and its progress may be dropped
	done    chan struct{} // closed when res or err is set
	callers atomic.Int32
	fence   atomic.Int64 // the lease's, once taken
	release func()       // the starter's Retain; nil when none
	joined  []string     // names of the callers that joined; p.mu

	// Set before done is closed.
	res      *Result
	err      error
	finished time.Time
	since    time.Time // when err happened, on the pipeline's clock (a remembered one: first)
	until    time.Time // err is replayed to callers until then (pipeline's clock)
}

// remembered is f's error as a caller that joined it after it failed
// gets it.
func (f *flight) remembered() error {
	var re *RememberedError
	if errors.As(f.err, &re) {
		return f.err
	}
	return &RememberedError{Err: f.err, Since: f.since}
}

// flightKey names the flight of ref for req: what changes the result
// (force, no-cache) is part of it, so a forced build never joins one
// that is not.
func flightKey(ref string, req Request) string {
	k := ref
	if req.Force {
		k += "\x00force"
	}
	if req.NoCache {
		k += "\x00no-cache"
	}
	return k
}

// joinKind says how a caller came to a flight.
type joinKind int

const (
	started  joinKind = iota // it started it
	joined                   // it joined it while it ran
	replayed                 // it joined a failure remembered
)

// joinable returns the flight of key a caller with req joins, counting
// it; p.mu is held. A remembered failure is joined within its TTL, and
// never by a forced call.
func (p *Pipeline) joinable(key string, req Request) (*flight, *replay.Reader[Event], joinKind, bool) {
	f, ok := p.flights[key]
	how := joined
	switch {
	case !ok:
		return nil, nil, started, false
	case f.finished.IsZero():
	case !req.Force && p.clock.Now().Before(f.until):
		how = replayed
	default:
		delete(p.flights, key)
		f.expire()
		return nil, nil, started, false
	}
	f.callers.Add(1)
	f.joinedBy(req.Caller)
	f.waiting.Add(1)
	return f, f.log.Reader(), how, true
}

// expire settles a remembered failure that is forgotten: its progress is
// dropped now, or by the last caller still reading it.
func (f *flight) expire() {
	f.settled.Store(true)
	if f.waiting.Load() == 0 {
		f.dropProgress()
	}
}

// BuildState says where a build is.
type BuildState string

// Build states.
const (
	// StateRunning: queued, waiting for the lock, or building.
	StateRunning BuildState = "running"
	// StateSucceeded: the image exists (built, or found after the lock).
	StateSucceeded BuildState = "succeeded"
	// StateFailed: the build failed.
	StateFailed BuildState = "failed"
)

// BuildInfo describes a running or recent build.
type BuildInfo struct {
	// ID names the build (Event.BuildID).
	ID string
	// Ref is the image's reference.
	Ref string
	// State says where it is.
	State BuildState
	// Started is when the first caller asked.
	Started time.Time
	// Duration is how long it ran (so far, while running).
	Duration time.Duration
	// Result is set when it succeeded.
	Result *Result
	// Err is set when it failed.
	Err error
	// Callers is how many calls started or joined it.
	Callers int
	// Fence is the fencing number of the tag's shared lease the build
	// took (see Lease); 0 before it is taken or without a shared lease.
	Fence int64
	// StartedBy names the caller that started it (Request.Caller).
	StartedBy string
	// JoinedBy names the other callers that joined it, each once, in the
	// order they joined.
	JoinedBy []string
}

// Involves reports whether the named caller started or joined the build.
func (b BuildInfo) Involves(caller string) bool {
	if b.StartedBy == caller {
		return true
	}
	for _, c := range b.JoinedBy {
		if c == caller {
			return true
		}
	}
	return false
}

// Stats are the pipeline's current load.
type Stats struct {
	// Running is how many builds hold a slot.
	Running int
	// Queued is how many builds wait for a slot.
	Queued int
}

// join returns the flight of ref to follow: the running one with the same
// key (or one that failed within the failure TTL), else a new one,
// started; with the reader this caller follows it by.
func (p *Pipeline) join(ref name.Tag, img *spec.Image, base string, req Request) (*flight, *replay.Reader[Event], joinKind, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := flightKey(ref.Name(), req)
	if f, rd, how, ok := p.joinable(key, req); ok {
		return f, rd, how, nil
	}
	if p.maxBuilds > 0 && p.maxQueue >= 0 && p.active >= p.maxBuilds+p.maxQueue {
		return nil, nil, started, fmt.Errorf("building %s: %w: %d running and %d queued", ref.Name(), ErrBusy, p.maxBuilds, p.maxQueue)
	}
	own := req
	own.Sink = nil
	f := &flight{id: randid.New(), key: key, ref: ref, img: img, base: base, req: own, started: time.Now(), done: make(chan struct{})}
	f.log, f.fold = newEventLog(p.progressLimit)
	f.callers.Add(1)
	f.waiting.Add(1)
	if req.Retain != nil {
		f.release = req.Retain()
	}
	p.flights[key] = f
	p.byID[f.id] = f
	p.active++
	rd := f.log.Reader() // the starter's: it gets every event
	go p.run(f)
	return f, rd, started, nil
}

// joinedBy records that the named caller joined f; p.mu is held.
func (f *flight) joinedBy(caller string) {
	if caller == "" || caller == f.req.Caller {
		return
	}
	for _, c := range f.joined {
		if c == caller {
			return
		}
	}
	f.joined = append(f.joined, caller)
}

// run builds f's image under the pipeline's context, then publishes the
// result to every caller.
func (p *Pipeline) run(f *flight) {
	ctx := p.base
	if p.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.timeout)
		defer cancel()
	}
	res, err := p.flyRecovered(ctx, f)
	if f.release != nil {
		defer f.release()
	}
	if err != nil && ctx.Err() == context.DeadlineExceeded && p.base.Err() == nil {
		err = fmt.Errorf("building %s: the build ran past its %s timeout: %w", f.ref.Name(), p.timeout, context.DeadlineExceeded)
	}
	if err != nil {
		f.log.Add(Event{Kind: KindFailed, Time: time.Now(), Ref: f.ref.Name(), BuildID: f.id, Err: err})
	}
	p.mu.Lock()
	now := p.clock.Now()
	f.res, f.err, f.finished, f.since = res, err, time.Now(), now
	var re *RememberedError
	if errors.As(err, &re) {
		f.since = re.Since
	}
	keep := p.remember(err, f.req.Force) > 0
	if keep {
		f.until = f.since.Add(p.failureTTL)
	}
	// A finished build keeps its events for Watch, not its spec, request
	// or (unless its failure is remembered) progress.
	f.img, f.req, f.base = nil, Request{Caller: f.req.Caller}, ""
	p.active--
	p.recent = append(p.recent, f)
	for len(p.recent) > p.history {
		old := p.recent[0]
		p.recent = p.recent[1:]
		if p.byID[old.id] == old {
			delete(p.byID, old.id)
		}
	}
	// Forget this flight unless its failure is remembered, and the
	// remembered failures that expired (their progress too).
	for k, g := range p.flights {
		if !g.finished.IsZero() && !now.Before(g.until) {
			delete(p.flights, k)
			if g != f {
				g.expire()
			}
		}
	}
	p.mu.Unlock()
	// Settled before the log ends: the last caller to read it to its end
	// drops the progress (or this does, when none reads).
	f.settled.Store(!keep)
	f.log.Close()
	close(f.done)
	if !keep && f.waiting.Load() == 0 {
		f.dropProgress()
	}
}

// fly is the build itself: a remembered failure, the lock (or the build
// of another replica that holds it), the second look-up, a slot, the
// build and push (after a last check), the record.
func (p *Pipeline) fly(ctx context.Context, f *flight) (res *Result, err error) {
	ref := f.ref.Name()
	var pub Publication
	emit := func(ev Event) {
		ev.BuildID = f.id
		if ev.Time.IsZero() {
			ev.Time = time.Now()
		}
		f.log.Add(ev)
		if pub != nil {
			pub.Add(ev)
		}
	}
	if p.builder == nil {
		return nil, fmt.Errorf("building %s: %w: no builder", ref, ErrUnavailable)
	}
	if p.exchange != nil && !f.req.Force {
		// A failure another replica remembers is this build's too.
		if err := p.exchange.Failure(ctx, ref, emit); err != nil {
			return nil, err
		}
	}
	// The lock first: a caller that follows another build, or finds the
	// image after the lock, never holds a build slot.
	held, release, followed, err := p.lock(ctx, f, emit)
	if followed != nil {
		return followed.res, followed.err
	}
	if err != nil {
		return nil, fmt.Errorf("taking the build lock of %s: %w", ref, err)
	}
	defer release()
	lease, _ := LeaseFrom(held)
	f.fence.Store(lease.Fence)
	if p.exchange != nil {
		pub = p.exchange.Publish(ref, f.id, lease)
		defer func() {
			// A panic below ends the published build too, as a failure.
			if v := recover(); v != nil {
				res, err = nil, p.recovered(f, v)
			}
			pub.Finish(res, err, p.remember(err, f.req.Force))
		}()
	}
	if !f.req.Force {
		// Another process may have pushed it while we waited for the lock.
		res, err := p.find(held, f.ref, Request{Sink: emit}, f.started, f.id)
		if res != nil || err != nil {
			return res, err
		}
	}
	if p.slots != nil {
		select {
		case p.slots <- struct{}{}:
			defer func() { <-p.slots }()
		case <-held.Done():
			return nil, fmt.Errorf("building %s: waiting for a build slot: %w", ref, context.Cause(held))
		}
	}
	emit(Event{Kind: KindBuilding, Ref: ref, Fence: lease.Fence})
	dgst, built, err := p.build(held, f.img, f.base, ref, nil, f.req, emit, p.beforePush(held, f))
	var meanwhile *pushedMeanwhile
	switch {
	case errors.As(err, &meanwhile):
		emit(Event{Kind: KindFound, Ref: ref, Source: meanwhile.source, Digest: meanwhile.digest})
		return &Result{Ref: f.ref, Digest: meanwhile.digest, Outcome: OutcomeFound, Source: meanwhile.source, BuildID: f.id, Fence: lease.Fence}, nil
	case err != nil && held.Err() != nil && ctx.Err() == nil:
		// The lease was lost: the build stopped before it pushed.
		return nil, fmt.Errorf("building %s (fence %d): %w", ref, lease.Fence, context.Cause(held))
	case err != nil:
		return nil, err
	}
	lease.Fence = f.fence.Load() // the fence confirmed before the push
	emit(Event{Kind: KindPushed, Ref: ref, Digest: dgst, Fence: lease.Fence, Daemon: built.Daemon, Python: built.Python})
	if p.recorder != nil {
		// A failed record costs a lookup next time, never the result.
		_ = p.recorder.Record(f.ref, dgst)
	}
	return &Result{Ref: f.ref, Digest: dgst, Outcome: OutcomeBuilt, BuildID: f.id, Fence: lease.Fence, Daemon: built.Daemon, Python: built.Python}, nil
}

// remember returns how long a build's error is remembered: a lost lease
// never is (the next caller tries again).
func (p *Pipeline) remember(err error, force bool) time.Duration {
	if err == nil || force || !Remembered(err) {
		return 0
	}
	return p.failureTTL
}

// ended is how a build followed on another replica ended.
type ended struct {
	res *Result
	err error
}

// lock takes f's tag lock. While another holds it and the pipeline has an
// exchange, the holder's build is followed (its events go to emit); when
// that build ends before the lock is free, its end is returned instead of
// the lock.
func (p *Pipeline) lock(ctx context.Context, f *flight, emit Sink) (context.Context, func() error, *ended, error) {
	ref := f.ref.Name()
	// lockCtx is the held context's parent: it ends when the lock is
	// released, or when the followed build ends first.
	lockCtx, stopLock := context.WithCancel(ctx)
	followCtx, stopFollow := context.WithCancel(ctx)
	defer stopFollow()
	var (
		following sync.WaitGroup
		followed  = make(chan ended, 1)
	)
	held, release, err := p.locker.Lock(lockCtx, ref, func(holder string) {
		emit(Event{Kind: KindWaiting, Ref: ref, Holder: holder})
		if p.exchange == nil {
			return
		}
		following.Add(1)
		go func() {
			defer following.Done()
			if e, ok := p.follow(followCtx, f, emit); ok {
				followed <- e
				stopLock()
			}
		}()
	})
	stopFollow()
	following.Wait()
	select {
	case e := <-followed:
		// The other build's end wins, even when the lock came too.
		if err == nil {
			release()
		}
		stopLock()
		return nil, nil, &e, nil
	default:
	}
	if err != nil {
		stopLock()
		return nil, nil, nil, err
	}
	return held, func() error {
		defer stopLock()
		return release()
	}, nil, nil
}

// follow follows the build of f's tag that another replica runs until it
// ends with a result: a digest the registry confirms, or a failure that
// is remembered (one that would happen here too). Anything else (the
// backend could not be read, the build was abandoned, lost its lease or
// its BuildKit) is no result: following goes on, and the caller keeps
// waiting for the lock, then finds the image or builds it. It returns
// false when ctx ends first.
func (p *Pipeline) follow(ctx context.Context, f *flight, emit Sink) (ended, bool) {
	ref := f.ref.Name()
	for {
		res, err := p.exchange.Follow(ctx, ref, func(ev Event) {
			if ctx.Err() == nil {
				emit(ev)
			}
		})
		switch {
		case ctx.Err() != nil:
			return ended{}, false
		case res != nil:
			// Redis is not trusted for digests: the registry says.
			r := p.lookup.Lookup(ctx, f.ref)
			if r.State == cache.Exists {
				return ended{res: &Result{Ref: f.ref, Digest: r.Digest, Outcome: OutcomeJoined, BuildID: f.id, Fence: res.Fence, Daemon: res.Daemon, Python: res.Python}}, true
			}
		case Remembered(err):
			return ended{err: err}, true
		}
		// The backend could not be read (the lock falls back to the
		// in-process one meanwhile), or the build ended without a
		// result: follow the next one.
		t := p.clock.NewTimer(followRetry)
		select {
		case <-ctx.Done():
			t.Stop()
			return ended{}, false
		case <-t.C():
		}
	}
}

// followRetry is how long a follower waits before it follows again after
// no result.
const followRetry = time.Second

// pushedMeanwhile: the last check before the push found the tag.
type pushedMeanwhile struct {
	digest v1.Hash
	source Source
}

func (e *pushedMeanwhile) Error() string { return "pushed meanwhile as " + e.digest.String() }

// beforePush is the last check before f's image is pushed: the lease is
// still held (confirmed and extended by its Locker, whose fence the push
// then runs under), and (unless forced) the tag is still absent.
func (p *Pipeline) beforePush(held context.Context, f *flight) func(context.Context) error {
	return func(ctx context.Context) error {
		if held.Err() != nil {
			return context.Cause(held)
		}
		if l, ok := LeaseFrom(held); ok && l.Confirm != nil {
			fence, err := l.Confirm(ctx)
			if err != nil {
				return err
			}
			f.fence.Store(fence)
		}
		if f.req.Force {
			return nil
		}
		r := p.lookup.Lookup(ctx, f.ref)
		if r.State != cache.Exists {
			// Absent, or the registry cannot say: the push will tell.
			return nil
		}
		src := SourceRegistry
		if r.FromIndex {
			src = SourceIndex
		}
		return &pushedMeanwhile{digest: r.Digest, source: src}
	}
}

// followed is called when a caller has read f's log to its end (or left):
// the last one drops a finished build's progress.
func (f *flight) followed() {
	if f.waiting.Add(-1) == 0 && f.settled.Load() {
		f.dropProgress()
	}
}

// dropProgress folds a finished build's progress away.
func (f *flight) dropProgress() {
	f.fold.drop.Store(true)
	f.log.Compact()
}

// Builds returns the running builds and the most recent finished ones,
// oldest first.
func (p *Pipeline) Builds() []BuildInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]BuildInfo, 0, len(p.byID))
	for _, f := range p.recent {
		out = append(out, f.info())
	}
	for _, f := range p.byID {
		if f.finished.IsZero() {
			out = append(out, f.info())
		}
	}
	return out
}

// Build describes the running or recent build id; false when the
// pipeline does not know it (any more).
func (p *Pipeline) Build(id string) (BuildInfo, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f, ok := p.byID[id]
	if !ok {
		return BuildInfo{}, false
	}
	return f.info(), true
}

// info describes f; p.mu is held.
func (f *flight) info() BuildInfo {
	bi := BuildInfo{ID: f.id, Ref: f.ref.Name(), Started: f.started, Callers: int(f.callers.Load()), Fence: f.fence.Load(),
		StartedBy: f.req.Caller, JoinedBy: append([]string(nil), f.joined...)}
	switch {
	case f.finished.IsZero():
		bi.State, bi.Duration = StateRunning, time.Since(f.started)
	case f.err != nil:
		bi.State, bi.Err, bi.Duration = StateFailed, f.err, f.finished.Sub(f.started)
	default:
		bi.State, bi.Result, bi.Duration = StateSucceeded, f.res, f.finished.Sub(f.started)
	}
	return bi
}

// Watch follows the build id from its start: sink gets every event, then
// Done or Failed. It returns the build's error, ErrNotFound for an id the
// pipeline does not know (any more), or ctx's error.
func (p *Pipeline) Watch(ctx context.Context, id string, sink Sink) (*Result, error) {
	p.mu.Lock()
	f, ok := p.byID[id]
	p.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("build %s: %w", id, ErrNotFound)
	}
	err := f.log.Follow(ctx, orDrop(sink))
	if errors.Is(err, replay.ErrBehind) {
		err = waitDone(ctx, f) // a slow watcher misses events, not the end
	}
	if err != nil {
		return nil, err
	}
	<-f.done
	if f.err != nil {
		return nil, f.err
	}
	res := *f.res
	if sink != nil {
		sink(Event{Kind: KindDone, Time: time.Now(), Ref: f.ref.Name(), BuildID: f.id, Digest: res.Digest, Result: &res})
	}
	return &res, nil
}

// Stats returns the pipeline's current load.
func (p *Pipeline) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	running := p.active
	if p.slots != nil {
		running = len(p.slots)
	}
	return Stats{Running: running, Queued: p.active - running}
}

package ensure

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/ispec-dev/ispec/internal/replay"
	"github.com/ispec-dev/ispec/spec"
)

// flight is one build of one tag, shared by every caller that asks for the
// tag while it runs.
type flight struct {
	id      string
	ref     name.Tag
	img     *spec.Image
	base    string
	req     Request // the starter's, without its sink
	started time.Time
	log     *replay.Log[Event]
	done    chan struct{} // closed when res or err is set
	callers atomic.Int32
	release func() // the starter's Retain; nil when none

	// Set before done is closed.
	res      *Result
	err      error
	finished time.Time
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
}

// Stats are the pipeline's current load.
type Stats struct {
	// Running is how many builds hold a slot.
	Running int
	// Queued is how many builds wait for a slot.
	Queued int
}

// join returns the flight of ref to follow: the running one (or one that
// failed within the failure TTL), else a new one, started.
func (p *Pipeline) join(ref name.Tag, img *spec.Image, base string, req Request) (*flight, bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f, ok := p.flights[ref.Name()]; ok {
		f.callers.Add(1)
		return f, true, nil
	}
	if p.maxBuilds > 0 && p.maxQueue >= 0 && p.active >= p.maxBuilds+p.maxQueue {
		return nil, false, fmt.Errorf("building %s: %w: %d running and %d queued", ref.Name(), ErrBusy, p.maxBuilds, p.maxQueue)
	}
	own := req
	own.Sink = nil
	f := &flight{id: newID(), ref: ref, img: img, base: base, req: own, started: time.Now(), log: replay.New[Event](), done: make(chan struct{})}
	f.callers.Add(1)
	if req.Retain != nil {
		f.release = req.Retain()
	}
	p.flights[ref.Name()] = f
	p.byID[f.id] = f
	p.active++
	go p.run(f)
	return f, false, nil
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
	res, err := p.fly(ctx, f)
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
	f.res, f.err, f.finished = res, err, time.Now()
	p.active--
	p.recent = append(p.recent, f)
	for len(p.recent) > p.history {
		old := p.recent[0]
		p.recent = p.recent[1:]
		if p.byID[old.id] == old {
			delete(p.byID, old.id)
		}
	}
	keep := err != nil && p.failureTTL > 0
	if !keep && p.flights[f.ref.Name()] == f {
		delete(p.flights, f.ref.Name())
	}
	p.mu.Unlock()
	f.log.Close()
	close(f.done)
	if keep {
		time.AfterFunc(p.failureTTL, func() {
			p.mu.Lock()
			if p.flights[f.ref.Name()] == f {
				delete(p.flights, f.ref.Name())
			}
			p.mu.Unlock()
		})
	}
}

// fly is the build itself: a slot, the lock, the second look-up, the
// build and push, the record.
func (p *Pipeline) fly(ctx context.Context, f *flight) (*Result, error) {
	ref := f.ref.Name()
	emit := func(ev Event) {
		ev.BuildID = f.id
		if ev.Time.IsZero() {
			ev.Time = time.Now()
		}
		f.log.Add(ev)
	}
	if p.builder == nil {
		return nil, fmt.Errorf("building %s: %w: no builder", ref, ErrUnavailable)
	}
	if p.slots != nil {
		select {
		case p.slots <- struct{}{}:
			defer func() { <-p.slots }()
		case <-ctx.Done():
			return nil, fmt.Errorf("building %s: waiting for a build slot: %w", ref, ctx.Err())
		}
	}
	held, release, err := p.locker.Lock(ctx, ref, func(holder string) {
		emit(Event{Kind: KindWaiting, Ref: ref, Holder: holder})
	})
	if err != nil {
		return nil, fmt.Errorf("taking the build lock of %s: %w", ref, err)
	}
	defer release()
	if !f.req.Force {
		// Another process may have pushed it while we waited for the lock.
		res, err := p.find(held, f.ref, Request{Sink: emit}, f.started, f.id)
		if res != nil || err != nil {
			return res, err
		}
	}
	emit(Event{Kind: KindBuilding, Ref: ref})
	dgst, err := p.build(held, f.img, f.base, ref, nil, f.req, emit)
	if err != nil {
		return nil, err
	}
	emit(Event{Kind: KindPushed, Ref: ref, Digest: dgst})
	if p.recorder != nil {
		// A failed record costs a lookup next time, never the result.
		_ = p.recorder.Record(f.ref, dgst)
	}
	return &Result{Ref: f.ref, Digest: dgst, Outcome: OutcomeBuilt, BuildID: f.id}, nil
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

// info describes f; p.mu is held.
func (f *flight) info() BuildInfo {
	bi := BuildInfo{ID: f.id, Ref: f.ref.Name(), Started: f.started, Callers: int(f.callers.Load())}
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
	if err := f.log.Follow(ctx, sink.orDrop()); err != nil {
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

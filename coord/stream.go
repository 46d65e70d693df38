package coord

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/ispec-dev/ispec/builder/progress"
	"github.com/redis/go-redis/v9"

	"github.com/ispec-dev/ispec/ensure"
)

// RemoteError is a build failure another replica published: its message
// and class, as the replica that built saw them.
type RemoteError struct {
	// Class is the failure's class there.
	Class ensure.Class
	// Message is the error's text there.
	Message string
	// BuildID names the build that failed.
	BuildID string
	// Remember says whether the failure is one that is remembered
	// (ensure.Remembered, where it happened): a failed step or an
	// invalid spec.
	Remember bool
}

func (e *RemoteError) Error() string { return e.Message }

// Remembered reports whether the failure is remembered where it happened
// (ensure.Remembered): a follower ends with it only then.
func (e *RemoteError) Remembered() bool { return e.Remember }

// ErrorClass reports the class the error had where it happened
// (ensure.ClassOf).
func (e *RemoteError) ErrorClass() ensure.Class { return e.Class }

// wireEvent is an ensure.Event in a stream entry (JSON). Done and Failed
// entries end a build's stream.
type wireEvent struct {
	Kind    ensure.Kind      `json:"kind"`
	Time    time.Time        `json:"time"`
	Ref     string           `json:"ref,omitempty"`
	BuildID string           `json:"build_id,omitempty"`
	Source  ensure.Source    `json:"source,omitempty"`
	Holder  string           `json:"holder,omitempty"`
	Status  *progress.Status `json:"status,omitempty"`
	Digest  string           `json:"digest,omitempty"`
	Fence   int64            `json:"fence,omitempty"`
	Daemon  string           `json:"daemon,omitempty"`
	// Python is what a floating spec's images installed (Pushed, Done).
	Python   map[string][]string `json:"python,omitempty"`
	Outcome  ensure.Outcome      `json:"outcome,omitempty"`
	Class    ensure.Class        `json:"class,omitempty"`
	Error    string              `json:"error,omitempty"`
	Remember bool                `json:"remember,omitempty"`
}

func toWire(ev ensure.Event) wireEvent {
	w := wireEvent{Kind: ev.Kind, Time: ev.Time, Ref: ev.Ref, BuildID: ev.BuildID, Source: ev.Source, Holder: ev.Holder,
		Status: ev.Status, Fence: ev.Fence, Daemon: ev.Daemon, Python: ev.Python}
	if ev.Digest != (v1.Hash{}) {
		w.Digest = ev.Digest.String()
	}
	if ev.Err != nil {
		w.Class, w.Error, w.Remember = ensure.ClassOf(ev.Err), ev.Err.Error(), ensure.Remembered(ev.Err)
	}
	return w
}

func (w wireEvent) event() ensure.Event {
	ev := ensure.Event{Kind: w.Kind, Time: w.Time, Ref: w.Ref, BuildID: w.BuildID, Source: w.Source, Holder: w.Holder,
		Status: w.Status, Fence: w.Fence, Daemon: w.Daemon, Python: w.Python}
	if w.Digest != "" {
		ev.Digest, _ = v1.NewHash(w.Digest)
	}
	if w.Error != "" {
		ev.Err = &RemoteError{Class: w.Class, Message: w.Error, BuildID: w.BuildID, Remember: w.Remember}
	}
	return ev
}

// failure is a remembered failed build.
type failure struct {
	BuildID string       `json:"build_id"`
	Class   ensure.Class `json:"class"`
	Error   string       `json:"error"`
	Time    time.Time    `json:"time"`
}

// Publish implements ensure.Exchange: the build's events go to a stream
// (written in the background, in order), and the tag's current build key
// names it, so that callers on other replicas find and follow it.
func (r *Redis) Publish(ref, id string, l ensure.Lease) ensure.Publication {
	p := &publication{r: r, ref: ref, id: id, fence: l.Fence, stream: r.key("events", id), ch: make(chan ensure.Event, 4096), done: make(chan struct{})}
	if r.Degraded() {
		close(p.done)
		p.off = true
		return p
	}
	go p.run()
	return p
}

type publication struct {
	r      *Redis
	ref    string
	id     string
	fence  int64
	stream string
	ch     chan ensure.Event
	done   chan struct{}
	off    bool // Redis was unreachable: nothing is published
}

// Add implements ensure.Publication. When the backlog is full (Redis is
// slow), progress is dropped rather than the build slowed.
func (p *publication) Add(ev ensure.Event) {
	if p.off {
		return
	}
	select {
	case p.ch <- ev:
	default:
	}
}

func (p *publication) run() {
	defer close(p.done)
	ctx := context.Background()
	if err := p.r.c.Set(ctx, p.r.key("build", p.ref), p.id, p.r.streamTTL).Err(); err != nil {
		p.r.unreachable(err)
	}
	for ev := range p.ch {
		batch := []ensure.Event{ev}
	more:
		for len(batch) < 256 {
			select {
			case ev, ok := <-p.ch:
				if !ok {
					break more
				}
				batch = append(batch, ev)
			default:
				break more
			}
		}
		if err := p.write(ctx, batch...); err != nil {
			p.r.unreachable(err)
		}
	}
}

// write appends events to the stream, trimmed and expired, in one round
// trip.
func (p *publication) write(ctx context.Context, evs ...ensure.Event) error {
	pipe := p.r.c.Pipeline()
	for _, ev := range evs {
		data, err := json.Marshal(toWire(ev))
		if err != nil {
			continue
		}
		pipe.XAdd(ctx, &redis.XAddArgs{Stream: p.stream, MaxLen: p.r.streamMax, Approx: true, Values: []any{"ev", data}})
	}
	pipe.Expire(ctx, p.stream, p.r.streamTTL)
	_, err := pipe.Exec(ctx)
	return err
}

// Finish implements ensure.Publication: the stream's last entry is the
// build's end; a failure is remembered for failureTTL; the tag's current
// build key is removed (followers read the stream by the build's id).
func (p *publication) Finish(res *ensure.Result, err error, failureTTL time.Duration) {
	if p.off {
		return
	}
	close(p.ch)
	<-p.done
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	end := ensure.Event{Time: time.Now(), Ref: p.ref, BuildID: p.id, Fence: p.fence}
	switch {
	case err != nil:
		end.Kind, end.Err = ensure.KindFailed, err
	case res != nil:
		end.Kind, end.Digest = ensure.KindDone, res.Digest
	default:
		return
	}
	w := toWire(end)
	if res != nil {
		w.Outcome, w.Daemon, w.Source, w.Python = res.Outcome, res.Daemon, res.Source, res.Python
	}
	data, _ := json.Marshal(w)
	pipe := p.r.c.TxPipeline()
	pipe.XAdd(ctx, &redis.XAddArgs{Stream: p.stream, MaxLen: p.r.streamMax, Approx: true, Values: []any{"ev", data}})
	pipe.Expire(ctx, p.stream, p.r.streamTTL)
	if err != nil && failureTTL > 0 {
		f, _ := json.Marshal(failure{BuildID: p.id, Class: w.Class, Error: w.Error, Time: end.Time})
		pipe.Set(ctx, p.r.key("failed", p.ref), f, failureTTL)
	}
	pipe.Eval(ctx, releaseSrc, []string{p.r.key("build", p.ref)}, p.id)
	if _, err := pipe.Exec(ctx); err != nil {
		p.r.unreachable(err)
	}
}

// Follow implements ensure.Exchange: the tag's current build, from the
// start of its stream, until its end entry. A stream that stops growing
// while the tag's current build key names another build (its replica
// died, its lease expired and another took it) is left for the new one.
func (r *Redis) Follow(ctx context.Context, ref string, fn ensure.Sink) (*ensure.Result, error) {
	id, last := "", "0"
	for {
		if id == "" {
			cur, err := r.current(ctx, ref)
			switch {
			case errors.Is(err, errNoBuild):
				if err := sleep(ctx, r.poll); err != nil {
					return nil, err
				}
				continue
			case err != nil:
				return nil, err
			}
			id, last = cur, "0"
		}
		res, next, err := r.read(ctx, id, last, fn)
		if res != nil || err != nil {
			return res, err
		}
		if next != last {
			last = next
			continue
		}
		// Quiet: is it still the tag's build?
		cur, err := r.current(ctx, ref)
		if err == nil && cur != id {
			if fn != nil {
				fn(ensure.Event{Kind: ensure.KindWaiting, Time: time.Now(), Ref: ref, Holder: "build " + cur + " (build " + id + " stopped)"})
			}
			id, last = cur, "0"
		}
	}
}

// current returns the id of the tag's current build.
func (r *Redis) current(ctx context.Context, ref string) (string, error) {
	id, err := r.c.Get(ctx, r.key("build", ref)).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return "", errNoBuild
	case err != nil:
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		r.unreachable(err)
		return "", fmt.Errorf("following the build of %s: %w: %v", ref, ensure.ErrUnavailable, err)
	}
	return id, nil
}

// read reads build id's stream after last for up to half a second: its
// result or error when the end entry came, else the last entry read.
func (r *Redis) read(ctx context.Context, id, last string, fn ensure.Sink) (*ensure.Result, string, error) {
	streams, err := r.c.XRead(ctx, &redis.XReadArgs{Streams: []string{r.key("events", id), last}, Block: 500 * time.Millisecond, Count: 500}).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, last, nil
	case err != nil:
		if ctx.Err() != nil {
			return nil, last, ctx.Err()
		}
		r.unreachable(err)
		return nil, last, fmt.Errorf("following build %s: %w: %v", id, ensure.ErrUnavailable, err)
	}
	for _, s := range streams {
		for _, m := range s.Messages {
			last = m.ID
			raw, _ := m.Values["ev"].(string)
			var w wireEvent
			if json.Unmarshal([]byte(raw), &w) != nil {
				continue
			}
			ev := w.event()
			switch ev.Kind {
			case ensure.KindDone:
				return &ensure.Result{Digest: ev.Digest, Outcome: w.Outcome, Source: w.Source, BuildID: id, Fence: w.Fence, Daemon: w.Daemon, Python: w.Python}, last, nil
			case ensure.KindFailed:
				return nil, last, ev.Err
			}
			if fn != nil {
				fn(ev)
			}
		}
	}
	return nil, last, nil
}

// Failure implements ensure.Exchange: a failure of ref another replica
// (or this one) remembers, as an *ensure.RememberedError; its build's
// events are replayed to fn when its stream is still there.
func (r *Redis) Failure(ctx context.Context, ref string, fn ensure.Sink) error {
	raw, err := r.c.Get(ctx, r.key("failed", ref)).Bytes()
	switch {
	case errors.Is(err, redis.Nil):
		return nil
	case err != nil:
		r.unreachable(err)
		return nil
	}
	var f failure
	if json.Unmarshal(raw, &f) != nil {
		return nil
	}
	since := f.Time
	if since.IsZero() {
		since = time.Now()
	}
	remembered := func(err error) error { return &ensure.RememberedError{Err: err, Since: since} }
	// Replay what the stream still has; its end entry is the error.
	for last := "0"; ; {
		_, next, err := r.read(ctx, f.BuildID, last, fn)
		var re *RemoteError
		if errors.As(err, &re) {
			return remembered(err)
		}
		if err != nil || next == last {
			break
		}
		last = next
	}
	return remembered(&RemoteError{Class: f.Class, Message: f.Error, BuildID: f.BuildID, Remember: true})
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

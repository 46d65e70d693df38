package ensure

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ispec-dev/ispec/builder"
	"github.com/ispec-dev/ispec/cache"
	"github.com/ispec-dev/ispec/internal/clock"
	"github.com/ispec-dev/ispec/spec"
)

// scriptedBuilder fails its builds with errs in turn, then builds.
type scriptedBuilder struct {
	fakeBuilder
	mu   sync.Mutex
	errs []error
}

func (b *scriptedBuilder) Build(ctx context.Context, img *spec.Image, opts builder.BuildOptions) (*builder.Result, error) {
	b.mu.Lock()
	var err error
	if len(b.errs) > 0 {
		err, b.errs = b.errs[0], b.errs[1:]
	}
	b.mu.Unlock()
	if err != nil {
		b.fakeBuilder.mu.Lock()
		b.calls = append(b.calls, opts)
		b.fakeBuilder.mu.Unlock()
		return nil, err
	}
	return b.fakeBuilder.Build(ctx, img, opts)
}

func TestOnlyFailedStepsAndInvalidSpecsAreRemembered(t *testing.T) {
	for _, tc := range []struct {
		name     string
		err      error
		remember bool
	}{
		{"failed step", errStep, true},
		{"invalid spec", fmt.Errorf("spec.yaml: %w: commands[0] is empty", ErrInvalid), true},
		{"buildkit unavailable", &builder.UnavailableError{Addr: "unix:///run/buildkit.sock", Err: errors.New("connection refused")}, false},
		{"buildkit gone mid-build", fmt.Errorf("building x: %w", &builder.UnavailableError{Addr: "tcp://bk:1234", Err: errors.New("error reading from server: EOF")}), false},
		{"registry unavailable", &builder.PushError{Ref: testRef, Err: errors.New("503 Service Unavailable")}, false},
		{"registry unknown", &cache.UnknownError{Ref: testRef, Reason: cache.ReasonUnavailable, Status: 503}, false},
		{"lease lost", fmt.Errorf("building x (fence 3): %w", ErrLeaseLost), false},
		{"canceled", fmt.Errorf("building x: %w", context.Canceled), false},
		{"timeout", fmt.Errorf("building x: %w", context.DeadlineExceeded), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Remembered(tc.err); got != tc.remember {
				t.Fatalf("Remembered(%v) = %v, want %v", tc.err, got, tc.remember)
			}
			reg := newFakeRegistry()
			b := &scriptedBuilder{fakeBuilder: fakeBuilder{reg: reg}, errs: []error{tc.err}}
			p := newTestPipeline(t, reg, b, WithFailureTTL(time.Hour))
			if _, err := p.Ensure(context.Background(), image(testRef), Request{}); err == nil {
				t.Fatal("the first call succeeded")
			}
			var ev events
			res, err := p.Ensure(context.Background(), image(testRef), Request{Sink: ev.sink})
			if !tc.remember {
				// The next caller tries again, and builds.
				if err != nil || res.Outcome != OutcomeBuilt {
					t.Fatalf("second call: %v, %v; want a new build", res, err)
				}
				if n := len(b.builds()); n != 2 {
					t.Errorf("%d builds, want 2", n)
				}
				return
			}
			var rem *RememberedError
			if !errors.As(err, &rem) || rem.Since.IsZero() || !strings.Contains(err.Error(), "remembered since") {
				t.Fatalf("second call: err = %v, want the failure, said to be remembered and since when", err)
			}
			if ClassOf(err) != ClassOf(tc.err) {
				t.Errorf("replayed class %s, want %s", ClassOf(err), ClassOf(tc.err))
			}
			last := ev.all[len(ev.all)-1]
			if last.Kind != KindFailed || !errors.As(last.Err, &rem) {
				t.Errorf("last event %v %v: want failed with the remembered error", last.Kind, last.Err)
			}
			if n := len(b.builds()); n != 1 {
				t.Errorf("%d builds, want 1", n)
			}
		})
	}
}

func TestRememberedFailureExpiresOnTheClock(t *testing.T) {
	reg := newFakeRegistry()
	b := &scriptedBuilder{fakeBuilder: fakeBuilder{reg: reg}, errs: []error{errStep}}
	clk := clock.NewFake(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	p := newTestPipeline(t, reg, b, WithFailureTTL(time.Minute), WithClock(clk))
	if _, err := p.Ensure(context.Background(), image(testRef), Request{}); err == nil {
		t.Fatal("the first call succeeded")
	}
	clk.Advance(59 * time.Second)
	_, err := p.Ensure(context.Background(), image(testRef), Request{})
	if !strings.Contains(fmt.Sprint(err), "remembered since 2026-01-02T03:04:05Z") {
		t.Fatalf("within the TTL: err = %v, want the remembered failure since the first call", err)
	}
	clk.Advance(time.Second)
	if res, err := p.Ensure(context.Background(), image(testRef), Request{}); err != nil || res.Outcome != OutcomeBuilt {
		t.Fatalf("after the TTL: %v, %v; want a build", res, err)
	}
}

func TestForceBypassesTheMemoryAndNeverJoins(t *testing.T) {
	reg := newFakeRegistry()
	b := &scriptedBuilder{fakeBuilder: fakeBuilder{reg: reg}, errs: []error{errStep}}
	p := newTestPipeline(t, reg, b, WithFailureTTL(time.Hour))
	if _, err := p.Ensure(context.Background(), image(testRef), Request{}); err == nil {
		t.Fatal("the first call succeeded")
	}
	// A forced call builds despite the remembered failure.
	res, err := p.Ensure(context.Background(), image(testRef), Request{Force: true})
	if err != nil || res.Outcome != OutcomeBuilt {
		t.Fatalf("forced: %v, %v; want a build", res, err)
	}

	// A forced call does not join a running build that is not forced.
	reg2 := newFakeRegistry()
	gated := &fakeBuilder{reg: reg2, gate: make(chan struct{}), start: make(chan string, 4)}
	q := newTestPipeline(t, reg2, gated, WithLocker(&countingLocker{}))
	done := make(chan *Result, 2)
	go func() {
		res, err := q.Ensure(context.Background(), image(testRef), Request{})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	<-gated.start
	var forced events
	go func() {
		res, err := q.Ensure(context.Background(), image(testRef), Request{Force: true, Sink: forced.sink})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	// The forced call starts a build of its own (Accepted, not Joined).
	forced.await(t, KindAccepted)
	if n := len(q.Builds()); n != 2 {
		t.Errorf("%d builds running, want 2", n)
	}
	close(gated.gate)
	<-gated.start
	for i := 0; i < 2; i++ {
		if r := <-done; r == nil || r.Outcome != OutcomeBuilt {
			t.Errorf("call %d: %+v, want its own build", i, r)
		}
	}
	if n := len(gated.builds()); n != 2 {
		t.Errorf("%d builds, want 2 (the forced one did not join)", n)
	}
}

// heldLocker is a Locker whose lock of each tag is held by "another
// replica" until the test releases it.
type heldLocker struct {
	mu   sync.Mutex
	free map[string]chan struct{}
}

func (l *heldLocker) hold(ref string) func() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.free == nil {
		l.free = map[string]chan struct{}{}
	}
	ch := make(chan struct{})
	l.free[ref] = ch
	return func() { close(ch) }
}

func (l *heldLocker) Lock(ctx context.Context, ref string, wait func(string)) (context.Context, func() error, error) {
	l.mu.Lock()
	ch := l.free[ref]
	l.mu.Unlock()
	if ch != nil {
		select {
		case <-ch:
		default:
			wait("replica b")
			select {
			case <-ch:
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			}
		}
	}
	return ctx, func() error { return nil }, nil
}

// fakeExchange answers Follow with its script, then blocks.
type fakeExchange struct {
	mu      sync.Mutex
	follows []func() (*Result, error)
	calls   int
	changed chan struct{} // closed and replaced on each Follow call
}

// changes returns a channel closed on the next Follow call.
func (x *fakeExchange) changes() <-chan struct{} {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.changed == nil {
		x.changed = make(chan struct{})
	}
	return x.changed
}

func (x *fakeExchange) Publish(ref, id string, l Lease) Publication { return nopPublication{} }

func (x *fakeExchange) Follow(ctx context.Context, ref string, fn Sink) (*Result, error) {
	x.mu.Lock()
	x.calls++
	if x.changed != nil {
		close(x.changed)
		x.changed = nil
	}
	var next func() (*Result, error)
	if len(x.follows) > 0 {
		next, x.follows = x.follows[0], x.follows[1:]
	}
	x.mu.Unlock()
	if next != nil {
		return next()
	}
	<-ctx.Done()
	return nil, ctx.Err()
}

func (x *fakeExchange) followed() int {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.calls
}

func (x *fakeExchange) Failure(ctx context.Context, ref string, fn Sink) error { return nil }

type nopPublication struct{}

func (nopPublication) Add(Event)                            {}
func (nopPublication) Finish(*Result, error, time.Duration) {}

func TestFollowerThatLosesTheStreamWaitsForTheLockThenFinds(t *testing.T) {
	reg := newFakeRegistry()
	b := &fakeBuilder{reg: reg}
	lk := &heldLocker{}
	release := lk.hold(testRef)
	clk := clock.NewFake(time.Now())
	x := &fakeExchange{follows: []func() (*Result, error){
		func() (*Result, error) { return nil, fmt.Errorf("following: %w: connection refused", ErrUnavailable) },
		// A "done" whose digest the registry does not have is no result.
		func() (*Result, error) { return &Result{Digest: digestOf("elsewhere"), Outcome: OutcomeBuilt}, nil },
		func() (*Result, error) { return nil, errors.New("reading the stream: unexpected entry") },
	}}
	p := newTestPipeline(t, reg, b, WithLocker(lk), WithExchange(x), WithClock(clk))
	type answer struct {
		res *Result
		err error
	}
	got := make(chan answer, 1)
	go func() {
		res, err := p.Ensure(context.Background(), image(testRef), Request{})
		got <- answer{res, err}
	}()
	// The follower retries on the clock after each non-result.
	for i := 0; i < 3; i++ {
		awaitChange(t, "the follower arms its retry", clk.Changed, func() bool { return clk.Waiters() == 1 })
		select {
		case a := <-got:
			t.Fatalf("the call ended after %d stream errors: %+v", i+1, a)
		default:
		}
		clk.Advance(followRetry)
	}
	awaitChange(t, "the follower follows a fourth time", x.changes, func() bool { return x.followed() == 4 })
	// The other replica pushes and frees the lock: the follower finds it.
	reg.push(testRef, digestOf(testRef))
	release()
	a := <-got
	if a.err != nil || a.res.Outcome != OutcomeFound || a.res.Digest != digestOf(testRef) {
		t.Fatalf("got %+v, %v; want the image found after the lock", a.res, a.err)
	}
	if len(b.builds()) != 0 {
		t.Error("the follower built")
	}
}

func TestRemoteDoneIsCheckedAgainstTheRegistry(t *testing.T) {
	reg := newFakeRegistry()
	b := &fakeBuilder{reg: reg}
	lk := &heldLocker{}
	defer lk.hold(testRef)()
	x := &fakeExchange{follows: []func() (*Result, error){
		func() (*Result, error) {
			reg.push(testRef, digestOf(testRef))
			// Redis says another digest: the registry's wins.
			return &Result{Digest: digestOf("stale"), Outcome: OutcomeBuilt, Fence: 7}, nil
		},
	}}
	p := newTestPipeline(t, reg, b, WithLocker(lk), WithExchange(x))
	res, err := p.Ensure(context.Background(), image(testRef), Request{})
	if err != nil || res.Outcome != OutcomeJoined || res.Digest != digestOf(testRef) || res.Fence != 7 {
		t.Fatalf("got %+v, %v; want joined with the registry's digest", res, err)
	}
	if len(b.builds()) != 0 {
		t.Error("the follower built")
	}
}

func TestFollowersHoldNoBuildSlot(t *testing.T) {
	reg := newFakeRegistry()
	b := &fakeBuilder{reg: reg}
	lk := &heldLocker{}
	release := lk.hold("reg.example/held:1")
	p := newTestPipeline(t, reg, b, WithLocker(lk), WithMaxBuilds(1))
	waiting := make(chan error, 1)
	var ev events
	go func() {
		_, err := p.Ensure(context.Background(), image("reg.example/held:1"), Request{Sink: ev.sink})
		waiting <- err
	}()
	// It waits for the tag's lock, without a slot.
	ev.await(t, KindWaiting)
	if s := p.Stats(); s.Running != 0 || s.Queued != 1 {
		t.Errorf("stats %+v while the only call waits for its lock; want 0 running, 1 queued", s)
	}
	// The only slot is free for another tag while the first waits.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if res, err := p.Ensure(ctx, image("reg.example/free:1"), Request{}); err != nil || res.Outcome != OutcomeBuilt {
		t.Fatalf("another tag: %v, %v; want built while the first waits for its lock", res, err)
	}
	release()
	if err := <-waiting; err != nil {
		t.Fatal(err)
	}
}

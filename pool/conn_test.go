package pool

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ispec-dev/ispec/builder"
	"github.com/ispec-dev/ispec/internal/clock"
	"github.com/ispec-dev/ispec/pylock"
	"github.com/ispec-dev/ispec/spec"
)

// fakeDaemon is one connection to a fake BuildKit daemon.
type fakeDaemon struct {
	gate     chan struct{} // Build waits for it when set
	started  chan struct{} // told when a Build starts, when set
	slowPing atomic.Bool   // Ping waits for its deadline
	closed   atomic.Bool
	buildErr error
}

// ResolvePython resolves to one pin, as Build builds.
func (d *fakeDaemon) ResolvePython(ctx context.Context, img *spec.Image, opts builder.ResolveOptions) ([]pylock.Pin, error) {
	if _, err := d.Build(ctx, img, builder.BuildOptions{}); err != nil {
		return nil, err
	}
	return []pylock.Pin{{Name: "demo", Version: "1.0"}}, nil
}

func (d *fakeDaemon) Build(ctx context.Context, img *spec.Image, opts builder.BuildOptions) (*builder.Result, error) {
	if d.closed.Load() {
		return nil, errors.New("build on a closed connection")
	}
	if d.started != nil {
		d.started <- struct{}{}
	}
	if d.gate != nil {
		<-d.gate
	}
	if d.closed.Load() {
		return nil, errors.New("connection closed under the build")
	}
	if d.buildErr != nil {
		return nil, d.buildErr
	}
	return &builder.Result{Digest: "sha256:0123"}, nil
}

func (d *fakeDaemon) Ping(ctx context.Context) error {
	if d.slowPing.Load() {
		<-ctx.Done()
		return &builder.UnavailableError{Addr: "fake", Err: ctx.Err()}
	}
	return nil
}

func (d *fakeDaemon) Close() error {
	d.closed.Store(true)
	return nil
}

// fakeDialer makes fakeDaemons: it fails while down, and waits for gate
// when set.
type fakeDialer struct {
	mu    sync.Mutex
	down  bool
	gate  chan struct{}
	make  func() *fakeDaemon
	dials int
	made  []*fakeDaemon
}

func (f *fakeDialer) dial(ctx context.Context, opts builder.Options) (daemon, error) {
	f.mu.Lock()
	f.dials++
	gate, down := f.gate, f.down
	f.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if down {
		return nil, &builder.UnavailableError{Addr: opts.Addr, Err: errors.New("connection refused")}
	}
	d := &fakeDaemon{}
	if f.make != nil {
		d = f.make()
	}
	f.mu.Lock()
	f.made = append(f.made, d)
	f.mu.Unlock()
	return d, nil
}

func (f *fakeDialer) set(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

func (f *fakeDialer) count() (int, []*fakeDaemon) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.dials, append([]*fakeDaemon{}, f.made...)
}

func newFakePool(t *testing.T, d *fakeDialer, opts ...Option) *Pool {
	t.Helper()
	p, err := New([]string{"tcp://fake:1"}, builder.Options{}, append([]Option{withDial(d.dial)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestConnectionInUseIsNeverClosed(t *testing.T) {
	first := &fakeDaemon{gate: make(chan struct{}), started: make(chan struct{}, 1)}
	d := &fakeDialer{}
	var dialed atomic.Int32
	d.make = func() *fakeDaemon {
		if dialed.Add(1) == 1 {
			return first
		}
		return &fakeDaemon{}
	}
	p := newFakePool(t, d, WithHealthTimeout(10*time.Millisecond))
	done := make(chan error, 1)
	go func() {
		_, err := p.Build(context.Background(), img("base"), builder.BuildOptions{})
		done <- err
	}()
	<-first.started
	// The health check of the next build times out: that build gets a
	// new connection, the running one keeps its own.
	first.slowPing.Store(true)
	if _, err := p.Build(context.Background(), img("base"), builder.BuildOptions{}); err != nil {
		t.Fatalf("the second build: %v", err)
	}
	if first.closed.Load() {
		t.Fatal("the connection was closed under a running build")
	}
	close(first.gate)
	if err := <-done; err != nil {
		t.Fatalf("the running build: %v", err)
	}
	if !first.closed.Load() {
		t.Error("the replaced connection was not closed after its last build")
	}
	if dials, _ := d.count(); dials != 2 {
		t.Errorf("%d dials, want 2", dials)
	}
}

func TestConnectsAgainAfterAFailureAndKeepsNoError(t *testing.T) {
	d := &fakeDialer{down: true}
	p := newFakePool(t, d)
	var down *builder.UnavailableError
	if _, err := p.Build(context.Background(), img("base"), builder.BuildOptions{}); !errors.As(err, &down) {
		t.Fatalf("with no daemon: err = %v, want unavailable", err)
	}
	if err := p.Check(context.Background()); !errors.As(err, &down) {
		t.Fatalf("Check with no daemon = %v, want unavailable", err)
	}
	// The daemon comes up: the next build uses it.
	d.set(false)
	if _, err := p.Build(context.Background(), img("base"), builder.BuildOptions{}); err != nil {
		t.Fatalf("with the daemon up: %v", err)
	}
	// A build that finds the daemon gone drops the connection; the next
	// one connects again.
	_, made := d.count()
	made[0].buildErr = &builder.UnavailableError{Addr: "tcp://fake:1", Err: errors.New("EOF")}
	if _, err := p.Build(context.Background(), img("base"), builder.BuildOptions{}); !errors.As(err, &down) {
		t.Fatalf("daemon gone mid-build: err = %v, want unavailable", err)
	}
	if !made[0].closed.Load() {
		t.Error("the failed connection was kept")
	}
	if _, err := p.Build(context.Background(), img("base"), builder.BuildOptions{}); err != nil {
		t.Fatalf("after the daemon came back: %v", err)
	}
	if dials, _ := d.count(); dials != 4 {
		t.Errorf("%d dials, want 4 (down, check, up, after the failure)", dials)
	}
}

func TestConcurrentConnectsShareOneDial(t *testing.T) {
	d := &fakeDialer{gate: make(chan struct{})}
	const n = 10
	waiting := make(chan struct{}, n)
	p := newFakePool(t, d, withConnectWait(func() { waiting <- struct{}{} }))
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := p.Build(context.Background(), img("base"), builder.BuildOptions{})
			errs <- err
		}()
	}
	// Every build waits for a connection while the first dial hangs.
	for i := 0; i < n; i++ {
		select {
		case <-waiting:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d of %d builds waited for a connection within 10s", i, n)
		}
	}
	close(d.gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if dials, _ := d.count(); dials != 1 {
		t.Errorf("%d dials for %d concurrent builds, want 1", dials, n)
	}
}

func TestWatchReportsEachChange(t *testing.T) {
	d := &fakeDialer{down: true}
	clk := clock.NewFake(time.Now())
	p := newFakePool(t, d, WithClock(clk))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	states := make(chan error, 4)
	go p.Watch(ctx, time.Second, func(err error) { states <- err })
	if err := <-states; err == nil {
		t.Fatal("first state: up, want down")
	}
	waitTimer(t, clk)
	d.set(false)
	clk.Advance(time.Second)
	if err := <-states; err != nil {
		t.Fatalf("after the daemon came up: %v", err)
	}
	// No change, no call.
	waitTimer(t, clk)
	clk.Advance(time.Second)
	waitTimer(t, clk)
	select {
	case err := <-states:
		t.Fatalf("called without a change: %v", err)
	default:
	}
}

// waitTimer waits until the code under test has armed a timer on clk.
func waitTimer(t *testing.T, clk *clock.Fake) {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		changed := clk.Changed()
		if clk.Waiters() > 0 {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatal("no timer armed within 10s")
		}
	}
}

// TestResolvePythonSharesTheBuildSlots: a resolution runs on the daemon's
// connection a build uses, within its slots (one here: it completes once
// the running build has ended and freed it); a daemon that is down makes
// it unavailable.
func TestResolvePythonSharesTheBuildSlots(t *testing.T) {
	first := &fakeDaemon{gate: make(chan struct{}), started: make(chan struct{}, 2)}
	d := &fakeDialer{make: func() *fakeDaemon { return first }}
	p := newFakePool(t, d, WithMaxPerDaemon(1))
	done := make(chan error, 1)
	go func() {
		_, err := p.Build(context.Background(), img("base"), builder.BuildOptions{})
		done <- err
	}()
	<-first.started
	resolved := make(chan error, 1)
	go func() {
		_, err := p.ResolvePython(context.Background(), img("base"), builder.ResolveOptions{})
		resolved <- err
	}()
	close(first.gate)
	if err := <-done; err != nil {
		t.Fatalf("build: %v", err)
	}
	if err := <-resolved; err != nil {
		t.Fatalf("resolution after the build: %v", err)
	}
	if dials, _ := d.count(); dials != 1 {
		t.Errorf("%d dials, want the build's connection shared", dials)
	}

	down := newFakePool(t, &fakeDialer{down: true})
	var unavailable *builder.UnavailableError
	if _, err := down.ResolvePython(context.Background(), img("base"), builder.ResolveOptions{}); !errors.As(err, &unavailable) {
		t.Errorf("with no daemon: %v, want unavailable", err)
	}
}

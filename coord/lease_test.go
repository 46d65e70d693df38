package coord

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"

	"github.com/ispec-dev/ispec/ensure"
	"github.com/ispec-dev/ispec/internal/clock"
)

const leaseKey = "ispec:lease:" + ref

// fakePair is two coordinators on one miniredis, each with its own fake
// clock.
func fakePair(t *testing.T, ttl time.Duration) (*miniredis.Miniredis, *Redis, *clock.Fake, *Redis, *clock.Fake) {
	t.Helper()
	mr := miniredis.RunT(t)
	mk := func(owner string) (*Redis, *clock.Fake) {
		clk := clock.NewFake(time.Now())
		r, err := New("redis://"+mr.Addr(), WithLeaseTTL(ttl), WithOwner(owner), WithPoll(10*time.Millisecond), WithClock(clk))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r, clk
	}
	a, ca := mk("replica-a")
	b, cb := mk("replica-b")
	return mr, a, ca, b, cb
}

// tick advances clk by d once the lease's renewal loop waits on a timer,
// then waits until it waits again (its renewal ran) or held ends.
func tick(t *testing.T, clk *clock.Fake, held context.Context, d time.Duration) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for clk.Waiters() == 0 {
		select {
		case <-clk.Changed():
		case <-held.Done():
			return
		case <-deadline:
			t.Fatal("the renewal loop armed no timer")
		}
	}
	changed := clk.Changed()
	clk.Advance(d) // fires the timer: Changed closes
	<-changed
	for clk.Waiters() == 0 {
		select {
		case <-clk.Changed():
		case <-held.Done():
			return
		case <-deadline:
			t.Fatal("the renewal loop did not wait again")
		}
	}
}

func TestLeaseIsRenewedEveryThirdOfItsTTL(t *testing.T) {
	mr, a, clk, _, _ := fakePair(t, 30*time.Second)
	held, release, err := a.Lock(context.Background(), ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	for i := 0; i < 5; i++ {
		mr.FastForward(20 * time.Second) // 10s left in Redis unless renewed
		tick(t, clk, held, 10*time.Second)
		if ttl := mr.TTL(leaseKey); ttl != 30*time.Second {
			t.Fatalf("round %d: lease TTL %s, want it renewed to 30s", i, ttl)
		}
	}
	if held.Err() != nil {
		t.Errorf("held context ended: %v", context.Cause(held))
	}
}

func TestFailingRenewalsEndTheLeaseAtItsValidity(t *testing.T) {
	mr, a, clk, _, _ := fakePair(t, 30*time.Second)
	held, release, err := a.Lock(context.Background(), ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	start := clk.Now()
	mr.Close() // every renewal fails from now on
	// Valid for the TTL less 1% drift (and 2ms): 29.698s.
	for clk.Now().Sub(start) < 29*time.Second {
		tick(t, clk, held, time.Second)
		if held.Err() != nil {
			t.Fatalf("lease lost %s after it was taken, before its validity ended: %v", clk.Now().Sub(start), context.Cause(held))
		}
	}
	tick(t, clk, held, time.Second)
	select {
	case <-held.Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("lease still held %s after it was taken with no renewal", clk.Now().Sub(start))
	}
	if err := context.Cause(held); !errors.Is(err, ensure.ErrLeaseLost) || !strings.Contains(err.Error(), "could not be renewed") {
		t.Errorf("cause %v, want ErrLeaseLost: could not be renewed", err)
	}
	l, _ := ensure.LeaseFrom(held)
	if _, err := l.Confirm(context.Background()); !errors.Is(err, ensure.ErrLeaseLost) {
		t.Errorf("confirm after the validity = %v, want ErrLeaseLost", err)
	}
}

func TestExpiredLeaseTakenByAnotherIsLost(t *testing.T) {
	mr, a, clk, b, _ := fakePair(t, 30*time.Second)
	held, release, err := a.Lock(context.Background(), ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	mr.FastForward(time.Minute) // expired in Redis before a renewed it (a paused)
	heldB, releaseB, err := b.Lock(context.Background(), ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer releaseB()
	tick(t, clk, held, 10*time.Second)
	select {
	case <-held.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("a's held context did not end after b took the lease")
	}
	if err := context.Cause(held); !errors.Is(err, ensure.ErrLeaseLost) || ensure.ClassOf(err) == ensure.ClassFailed {
		t.Errorf("cause %v, want ErrLeaseLost, not a failed build", err)
	}
	lb, _ := ensure.LeaseFrom(heldB)
	if v, _ := mr.Get(leaseKey); v != lb.Owner {
		t.Errorf("the lease is %q after a's renewal, want b's %q (never taken back)", v, lb.Owner)
	}
}

func TestExpiredLeaseIsNotRetakenUnderItsFence(t *testing.T) {
	mr, a, clk, _, _ := fakePair(t, 30*time.Second)
	held, release, err := a.Lock(context.Background(), ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	l, _ := ensure.LeaseFrom(held)
	// Redis forgets the lease while it is valid (a restart without
	// persistence): the owner takes it again, under a new, larger fence.
	mr.FlushAll()
	clk.Advance(time.Millisecond)
	tick(t, clk, held, 10*time.Second)
	if held.Err() != nil {
		t.Fatalf("lease lost: %v", context.Cause(held))
	}
	if v, _ := mr.Get(leaseKey); v != l.Owner {
		t.Fatalf("lease %q after the renewal, want a's", v)
	}
	fence, err := l.Confirm(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if fence <= l.Fence {
		t.Errorf("fence after Redis lost it: %d, want above %d", fence, l.Fence)
	}
}

func TestFenceGrowsAcrossARedisRestart(t *testing.T) {
	mr, a, ca, b, cb := fakePair(t, 30*time.Second)
	var last int64
	take := func(r *Redis) {
		t.Helper()
		held, release, err := r.Lock(context.Background(), ref, nil)
		if err != nil {
			t.Fatal(err)
		}
		l, _ := ensure.LeaseFrom(held)
		if l.Fence <= last {
			t.Fatalf("fence %d after %d: want it larger", l.Fence, last)
		}
		last = l.Fence
		release()
	}
	take(a)
	take(b)
	take(a)
	// A restart without persistence: the counter is gone.
	mr.FlushAll()
	ca.Advance(time.Second) // the restart takes time
	cb.Advance(time.Second)
	take(b)
	take(a)
	mr.Restart()
	take(b)
}

func TestConfirmBeforeThePush(t *testing.T) {
	mr, a, _, _, _ := fakePair(t, 30*time.Second)
	held, release, err := a.Lock(context.Background(), ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	l, _ := ensure.LeaseFrom(held)
	mr.FastForward(25 * time.Second)
	fence, err := l.Confirm(context.Background())
	if err != nil || fence != l.Fence {
		t.Fatalf("confirm = %d, %v; want fence %d", fence, err, l.Fence)
	}
	if ttl := mr.TTL(leaseKey); ttl != 30*time.Second {
		t.Errorf("confirm left the lease's TTL at %s, want it extended to 30s", ttl)
	}
	// Another owner's fence on the tag: this lease is fenced off.
	mr.Set("ispec:fence:"+ref, "99999999999999")
	if _, err := l.Confirm(context.Background()); !errors.Is(err, ensure.ErrLeaseLost) {
		t.Fatalf("confirm with a newer fence = %v, want ErrLeaseLost", err)
	}
	if !errors.Is(context.Cause(held), ensure.ErrLeaseLost) {
		t.Errorf("held context cause %v, want ErrLeaseLost", context.Cause(held))
	}
}

func TestConfirmFailsWhenAnotherOwnerHasTheLease(t *testing.T) {
	mr, a, _, _, _ := fakePair(t, 30*time.Second)
	held, release, err := a.Lock(context.Background(), ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	l, _ := ensure.LeaseFrom(held)
	mr.Set(leaseKey, "replica-b/0123")
	_, err = l.Confirm(context.Background())
	if !errors.Is(err, ensure.ErrLeaseLost) || !strings.Contains(err.Error(), "replica-b/0123") {
		t.Errorf("confirm = %v, want ErrLeaseLost naming the holder", err)
	}
}

func TestRedisLoggerLogsOncePerStateChange(t *testing.T) {
	lines := make(chan string, 10)
	l := NewRedisLogger(slog.New(lineHandler{lines}))
	for i := 0; i < 5; i++ {
		l.Printf(context.Background(), "redis: dial %s: %v", "127.0.0.1:1", errors.New("connection refused"))
	}
	l.Printf(context.Background(), "redis: pool: conn has unread data")
	close(lines)
	var got []string
	for s := range lines {
		got = append(got, s)
	}
	if len(got) != 2 || !strings.Contains(got[0], "connection refused") || !strings.Contains(got[1], "previous_repeated=4") {
		t.Errorf("logged %q; want the dial error once, then the next state with its repeats", got)
	}
}

// lineHandler sends each record as "message key=value...".
type lineHandler struct{ ch chan string }

func (h lineHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h lineHandler) Handle(_ context.Context, r slog.Record) error {
	s := r.Message
	r.Attrs(func(a slog.Attr) bool { s += " " + a.String(); return true })
	h.ch <- s
	return nil
}
func (h lineHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h lineHandler) WithGroup(string) slog.Handler      { return h }

package coord

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ispec-dev/ispec/ensure"
)

const ref = "reg.example/app:0123"

func newPair(t *testing.T, ttl time.Duration, opts ...Option) (*miniredis.Miniredis, *Redis, *Redis) {
	t.Helper()
	mr := miniredis.RunT(t)
	mk := func(owner string) *Redis {
		r, err := New("redis://"+mr.Addr(), append([]Option{WithLeaseTTL(ttl), WithOwner(owner), WithPoll(10 * time.Millisecond)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		return r
	}
	return mr, mk("replica-a"), mk("replica-b")
}

func TestSecondOwnerWaitsAndFenceGrows(t *testing.T) {
	_, a, b := newPair(t, time.Minute)
	heldA, releaseA, err := a.Lock(context.Background(), ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	la, ok := ensure.LeaseFrom(heldA)
	if !ok || la.Fence < time.Now().Add(-time.Minute).UnixMilli() || !strings.HasPrefix(la.Owner, "replica-a/") {
		t.Fatalf("lease %+v, %v; want a fence from the clock owned by replica-a", la, ok)
	}
	waited := make(chan string, 1)
	got := make(chan ensure.Lease, 1)
	go func() {
		held, release, err := b.Lock(context.Background(), ref, func(h string) { waited <- h })
		if err != nil {
			t.Error(err)
			return
		}
		l, _ := ensure.LeaseFrom(held)
		release()
		got <- l
	}()
	if h := <-waited; !strings.Contains(h, "replica-a/") {
		t.Errorf("holder %q does not name replica-a", h)
	}
	select {
	case <-got:
		t.Fatal("b took a lease a holds")
	case <-time.After(100 * time.Millisecond):
	}
	releaseA()
	if l := <-got; l.Fence <= la.Fence || !strings.HasPrefix(l.Owner, "replica-b/") {
		t.Errorf("b's lease %+v, want a fence above a's %d", l, la.Fence)
	}
}

func TestOnlyTheOwnerReleases(t *testing.T) {
	mr, a, b := newPair(t, time.Minute)
	_, releaseA, err := a.Lock(context.Background(), ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	mr.FastForward(2 * time.Minute) // a's lease expires (a paused)
	heldB, releaseB, err := b.Lock(context.Background(), ref, nil)
	if err != nil {
		t.Fatal(err)
	}
	lb, _ := ensure.LeaseFrom(heldB)
	releaseA() // stale: must not free b's lease
	if v, _ := mr.Get("ispec:lease:" + ref); v != lb.Owner {
		t.Errorf("after the stale owner's release the lease is %q, want b's %q", v, lb.Owner)
	}
	releaseB()
	if mr.Exists("ispec:lease:" + ref) {
		t.Error("the owner's release left the lease")
	}
}

func TestUnreachableRedisDegradesToInProcess(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	r, err := New("redis://" + addr)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	held, release, err := r.Lock(context.Background(), ref, nil)
	if err != nil {
		t.Fatalf("lock without redis: %v", err)
	}
	if !r.Degraded() {
		t.Error("not degraded")
	}
	if _, ok := ensure.LeaseFrom(held); ok {
		t.Error("an in-process lock carries a lease")
	}
	// The fallback still excludes within the process.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, _, err := r.Lock(ctx, ref, nil); err == nil {
		t.Error("a second lock in the same process was taken")
	}
	release()
	r.Publish(ref, "id", ensure.Lease{}).Finish(nil, errors.New("x"), time.Minute) // must not block
}

func TestBadURLsAndOptions(t *testing.T) {
	for _, u := range []string{"", "http://127.0.0.1:6379", "redis://host:notaport", "127.0.0.1:6379"} {
		if r, err := New(u); err == nil {
			r.Close()
			t.Errorf("New(%q) succeeded", u)
		}
	}
	for name, o := range map[string]Option{"ttl": WithLeaseTTL(time.Millisecond), "prefix": WithPrefix(" "), "owner": WithOwner(""),
		"stream ttl": WithStreamTTL(0), "stream max": WithStreamMax(1), "poll": WithPoll(0), "logger": WithLogger(nil)} {
		if r, err := New("redis://127.0.0.1:1", o); err == nil {
			r.Close()
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestFollowSeesEventsFromTheStartAndTheResult(t *testing.T) {
	_, a, b := newPair(t, time.Minute)
	dgst, _ := v1.NewHash("sha256:" + strings.Repeat("ab", 32))
	pub := a.Publish(ref, "build-1", ensure.Lease{Fence: 7})
	pub.Add(ensure.Event{Kind: ensure.KindBuilding, Ref: ref, BuildID: "build-1", Fence: 7})
	var (
		mu   sync.Mutex
		seen []ensure.Kind
	)
	first := make(chan struct{})
	var once sync.Once
	done := make(chan *ensure.Result, 1)
	go func() {
		res, err := b.Follow(context.Background(), ref, func(ev ensure.Event) {
			mu.Lock()
			seen = append(seen, ev.Kind)
			mu.Unlock()
			once.Do(func() { close(first) })
		})
		if err != nil {
			t.Error(err)
		}
		done <- res
	}()
	<-first // the follower joined while the build runs
	pub.Add(ensure.Event{Kind: ensure.KindPushed, Ref: ref, BuildID: "build-1", Digest: dgst, Fence: 7, Daemon: "unix:///d1"})
	pub.Finish(&ensure.Result{Digest: dgst, Outcome: ensure.OutcomeBuilt, Fence: 7, Daemon: "unix:///d1"}, nil, time.Minute)
	res := <-done
	if res == nil || res.Digest != dgst || res.Outcome != ensure.OutcomeBuilt || res.Fence != 7 || res.Daemon != "unix:///d1" {
		t.Errorf("result %+v", res)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 2 || seen[0] != ensure.KindBuilding || seen[1] != ensure.KindPushed {
		t.Errorf("events %v, want building, pushed", seen)
	}
}

func TestFailureIsSharedForItsTTL(t *testing.T) {
	mr, a, b := newPair(t, time.Minute)
	pub := a.Publish(ref, "build-2", ensure.Lease{Fence: 1})
	pub.Add(ensure.Event{Kind: ensure.KindBuilding, Ref: ref, BuildID: "build-2"})
	stepErr := errors.New("building x: step 2 failed: exit code: 3")
	pub.Finish(nil, stepErr, time.Minute)
	var kinds []ensure.Kind
	err := b.Failure(context.Background(), ref, func(ev ensure.Event) { kinds = append(kinds, ev.Kind) })
	var (
		re  *RemoteError
		rem *ensure.RememberedError
	)
	if !errors.As(err, &re) || re.Error() != stepErr.Error() || ensure.ClassOf(err) != ensure.ClassFailed || re.BuildID != "build-2" {
		t.Fatalf("failure = %v, want the step error, class failed", err)
	}
	if !errors.As(err, &rem) || rem.Since.IsZero() || !strings.Contains(err.Error(), "remembered since") {
		t.Errorf("failure %q does not say it is remembered, and since when", err)
	}
	if len(kinds) != 1 || kinds[0] != ensure.KindBuilding {
		t.Errorf("replayed %v", kinds)
	}
	mr.FastForward(2 * time.Minute)
	if err := b.Failure(context.Background(), ref, nil); err != nil {
		t.Errorf("after the TTL: %v", err)
	}
	if err := b.Failure(context.Background(), "reg.example/other:1", nil); err != nil {
		t.Errorf("a tag that never failed: %v", err)
	}
}

package cache

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
)

// countingChecker counts lookups and answers Absent. When atOnce is
// set, each lookup holds on until atOnce run together (or all total have
// started), so that a bound that is not kept shows as a higher peak.
type countingChecker struct {
	atOnce, total int64

	calls   atomic.Int64
	running atomic.Int64
	peak    atomic.Int64

	mu      sync.Mutex
	changed chan struct{} // closed and replaced when running or calls change
	stuck   atomic.Bool   // a lookup gave up holding on
}

func (c *countingChecker) notify() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.changed != nil {
		close(c.changed)
	}
	c.changed = make(chan struct{})
}

func (c *countingChecker) wait() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.changed == nil {
		c.changed = make(chan struct{})
	}
	return c.changed
}

func (c *countingChecker) Lookup(ctx context.Context, ref name.Tag) Result {
	c.calls.Add(1)
	n := c.running.Add(1)
	for {
		p := c.peak.Load()
		if n <= p || c.peak.CompareAndSwap(p, n) {
			break
		}
	}
	c.notify()
	timeout := time.After(10 * time.Second)
	for c.atOnce > 0 {
		ch := c.wait()
		if c.running.Load() >= c.atOnce || c.calls.Load() >= c.total {
			break
		}
		select {
		case <-ch:
			continue
		case <-timeout:
			c.stuck.Store(true)
		}
		break
	}
	c.running.Add(-1)
	c.notify()
	return Result{Ref: ref, State: Absent}
}

func TestLookupAll(t *testing.T) {
	tr := newTestRegistry(t)
	digest := tr.pushRandom(t, "team/app:present")
	refs := []name.Tag{
		tr.tag(t, "team/app:present"),
		tr.tag(t, "team/app:missing"),
		tr.tag(t, "team/app:present"),
		tr.tag(t, "team/app:missing"),
		tr.tag(t, "team/app:present"),
	}
	got := LookupAll(context.Background(), newRemote(t), refs, 0)
	if len(got) != len(refs) {
		t.Fatalf("got %d results for %d refs", len(got), len(refs))
	}
	for i, want := range []State{Exists, Absent, Exists, Absent, Exists} {
		if got[i].State != want || got[i].Ref != refs[i] {
			t.Errorf("result %d = %v for %v, want %v for %v", i, got[i].State, got[i].Ref, want, refs[i])
		}
	}
	if got[4].Digest != digest {
		t.Errorf("digest of a deduplicated result = %v, want %v", got[4].Digest, digest)
	}
	if n := tr.manifestReqs.Load(); n != 2 {
		t.Errorf("manifest requests = %d, want 2 (one per distinct tag)", n)
	}
}

func TestLookupAllNormalizesAndBounds(t *testing.T) {
	var refs []name.Tag
	for i := range 40 {
		refs = append(refs, testTag(t, "ubuntu:"+string(rune('a'+i%20))))
	}
	refs = append(refs, testTag(t, "index.docker.io/library/ubuntu:a"), testTag(t, "docker.io/ubuntu:b"))
	c := &countingChecker{atOnce: 4, total: 20}
	got := LookupAll(context.Background(), c, refs, 4)
	if n := c.calls.Load(); n != 20 {
		t.Errorf("lookups = %d, want 20 distinct", n)
	}
	if p := c.peak.Load(); p != 4 {
		t.Errorf("peak concurrency = %d, want 4 (the bound, reached)", p)
	}
	if c.stuck.Load() {
		t.Error("lookups did not run 4 at a time within 10s")
	}
	for i := range got {
		if got[i].Ref != refs[i] {
			t.Errorf("result %d is for %v, want %v", i, got[i].Ref, refs[i])
		}
	}
}

func TestLookupAllCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	refs := []name.Tag{testTag(t, "a.example/x:1"), testTag(t, "a.example/x:2")}
	for i, r := range LookupAll(ctx, &countingChecker{}, refs, 1) {
		if r.State == Exists {
			t.Errorf("result %d exists after cancel", i)
		}
	}
}

// TestLookupAllOneHandshake: many repositories of one registry cost one
// authentication handshake (a GET /v2/) between them, not one each.
func TestLookupAllOneHandshake(t *testing.T) {
	tr := newTestRegistry(t)
	var refs []name.Tag
	for _, repo := range []string{"a", "b", "c", "d", "e", "f"} {
		tr.pushRandom(t, "team/"+repo+":v1")
		refs = append(refs, tr.tag(t, "team/"+repo+":v1"))
	}
	tr.manifestReqs.Store(0)
	tr.allReqs.Store(0)
	for i, r := range LookupAll(context.Background(), newRemote(t), refs, 0) {
		if r.State != Exists {
			t.Fatalf("result %d = %v %v, want Exists", i, r.State, r.Err)
		}
	}
	manifests, all := tr.manifestReqs.Load(), tr.allReqs.Load()
	if manifests != int64(len(refs)) || all-manifests != 1 {
		t.Errorf("requests: %d manifest, %d other; want %d manifest and 1 handshake", manifests, all-manifests, len(refs))
	}
}

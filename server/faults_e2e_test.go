package server_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	apiv1 "github.com/ispec-dev/ispec/api/ispec/v1"
	"github.com/ispec-dev/ispec/ensure"
	"github.com/ispec-dev/ispec/internal/testenv"
)

// leaseWatch tells when, among callers spread over replicas, those of
// one replica see their build take a lease (a fence) while those of
// another wait for that lease: the events every caller gets.
type leaseWatch struct {
	mu       sync.Mutex
	building map[int]bool // replicas whose callers saw a leased build
	waiting  map[int]bool // replicas whose callers saw a held lock
	holder   int
	both     chan struct{} // closed once one builds while another waits
	once     sync.Once
}

func newLeaseWatch() *leaseWatch {
	return &leaseWatch{building: map[int]bool{}, waiting: map[int]bool{}, holder: -1, both: make(chan struct{})}
}

// sink is the event sink of a caller of replica ri.
func (w *leaseWatch) sink(ri int) ensure.Sink {
	return func(ev ensure.Event) {
		w.mu.Lock()
		defer w.mu.Unlock()
		switch {
		case ev.Kind == ensure.KindBuilding && ev.Fence > 0:
			w.building[ri] = true
		case ev.Kind == ensure.KindWaiting:
			w.waiting[ri] = true
		default:
			return
		}
		for b := range w.building {
			for f := range w.waiting {
				if b != f {
					w.once.Do(func() { w.holder = b; close(w.both) })
				}
			}
		}
	}
}

// TestRedisStoppedWhileCallersFollowAnotherReplica: callers on one
// replica follow the build the other runs when Redis stops; every caller
// still gets the image's digest. With Redis back, coordination resumes:
// the next tag is built once across both. The callers of the replica
// whose lease Redis can no longer renew get a lost lease (its build
// stops before the push: see
// TestALeaseWhoseRenewalsFailStopsTheBuildBeforeThePush).
func TestRedisStoppedWhileCallersFollowAnotherReplica(t *testing.T) {
	rd := testenv.StartRedis(t)
	rs := []*replica{startReplica(t, rd.URL(), 3*time.Second, nil), startReplica(t, rd.URL(), 3*time.Second, nil)}
	img := rs[0].newSpec(t, fmt.Sprintf("commands: [\"sleep 5; echo %d > /followed.txt\"]\n", time.Now().UnixNano()))
	const n = 10
	results, errs := make([]*ensure.Result, n), make([]error, n)
	watch := newLeaseWatch()
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		c := rs[i%len(rs)].client(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = c.Build(context.Background(), img, ensure.Request{Sink: watch.sink(i % len(rs))}, apiv1.ProgressDetail_PROGRESS_DETAIL_NONE)
		}()
	}
	// One replica holds the lease (a fence) and builds; the other's
	// callers wait for the lease and follow that build.
	select {
	case <-watch.both:
	case <-time.After(time.Minute):
		t.Fatal("no replica built under a lease while the other's callers waited for it, within a minute")
	}
	watch.mu.Lock()
	holder := watch.holder
	watch.mu.Unlock()
	mark := [2]int{rs[0].rcLog.mark(), rs[1].rcLog.mark()}
	rd.Stop()
	wg.Wait()
	follower := 1 - holder
	for i := range errs {
		if i%len(rs) == holder && errs[i] != nil && (errors.Is(errs[i], ensure.ErrLeaseLost) || strings.Contains(errs[i].Error(), "lease lost")) {
			continue
		}
		if errs[i] != nil {
			t.Fatalf("caller %d with redis stopped: %v", i, errs[i])
		}
		if results[i].Digest != results[follower].Digest {
			t.Errorf("caller %d got %s, caller %d %s", i, results[i].Digest, follower, results[follower].Digest)
		}
	}
	rd.Start()
	// Each replica's coordinator logs when Redis answers again; those
	// that never noticed Redis was gone have nothing to resume.
	for ri, r := range rs {
		if r.rc.Degraded() {
			r.rcLog.await(t, mark[ri], "reachable again", 30*time.Second)
		}
	}
	results2, errs2, repo := buildAcross(t, rs, 10, "commands: [\"sleep 2; echo NONCE > /resumed.txt\"]\n")
	checkOneBuild(t, rs[0].env, results2, errs2, repo)
}

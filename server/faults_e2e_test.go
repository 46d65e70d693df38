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

// waitUntil waits for cond, failing after d.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(20 * time.Millisecond)
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
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		c := rs[i%len(rs)].client(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = c.Build(context.Background(), img, ensure.Request{}, apiv1.ProgressDetail_PROGRESS_DETAIL_NONE)
		}()
	}
	// One replica holds the lease (a fence) and builds; the other's
	// callers wait for the lease and follow that build.
	holder := -1
	waitUntil(t, time.Minute, "one replica builds while the other follows", func() bool {
		leased, waiting := 0, 0
		for ri, r := range rs {
			for _, b := range r.p.Builds() {
				switch {
				case b.State != ensure.StateRunning:
				case b.Fence > 0:
					leased++
					holder = ri
				default:
					waiting++
				}
			}
		}
		return leased == 1 && waiting == 1
	})
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
	waitUntil(t, 30*time.Second, "coordination resumes", func() bool {
		return !rs[0].rc.Degraded() && !rs[1].rc.Degraded()
	})
	results2, errs2, repo := buildAcross(t, rs, 10, "commands: [\"sleep 2; echo NONCE > /resumed.txt\"]\n")
	checkOneBuild(t, rs[0].env, results2, errs2, repo)
}

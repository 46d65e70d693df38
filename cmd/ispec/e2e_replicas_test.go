package main

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	apiv1 "github.com/ispec-dev/ispec/api/ispec/v1"
	"github.com/ispec-dev/ispec/client"
	"github.com/ispec-dev/ispec/ensure"
	"github.com/ispec-dev/ispec/internal/testenv"
	"github.com/ispec-dev/ispec/spec"
)

// TestKilledReplicaLeaseExpiresAndTheOtherBuilds kills -9 the replica that
// holds a tag's lease mid-build: the other replica, whose callers wait,
// takes the lease once it expires, builds, and pushes the tag once.
func TestKilledReplicaLeaseExpiresAndTheOtherBuilds(t *testing.T) {
	env := e2e(t)
	rd := testenv.StartRedis(t)
	args := []string{"--redis-url", rd.URL(), "--lease-ttl", "3s"}
	a, b := startServe(t, args...), startServe(t, args...)
	path := uniqueSpec(t, env, fmt.Sprintf("commands: [\"sleep 6; echo %d > /k.txt\"]\n", time.Now().UnixNano()))
	img, err := spec.Load(context.Background(), path, spec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dial := func(addr string) *client.Client {
		c, err := client.Dial(addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	building := make(chan struct{})
	var once sync.Once
	// a's caller loses its server: its result is only awaited, so that
	// the call does not outlive the test.
	aDone := make(chan error, 1)
	go func() {
		_, err := dial(a.addr).Build(context.Background(), img, ensure.Request{Sink: func(ev ensure.Event) {
			if ev.Kind == ensure.KindBuilding {
				once.Do(func() { close(building) })
			}
		}}, apiv1.ProgressDetail_PROGRESS_DETAIL_NONE)
		aDone <- err
	}()
	select {
	case <-building:
	case err := <-aDone:
		t.Fatalf("the first replica's build ended before it started: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the first replica did not start building")
	}
	// Callers on the surviving replica wait for (follow) a's build: each
	// is told the lock is held before a is killed.
	const n = 5
	results, errs := make([]*ensure.Result, n), make([]error, n)
	var wg sync.WaitGroup
	waiting := make(chan int, n)
	cb := dial(b.addr)
	for i := 0; i < n; i++ {
		wg.Add(1)
		var told sync.Once
		go func() {
			defer wg.Done()
			results[i], errs[i] = cb.Build(context.Background(), img, ensure.Request{Sink: func(ev ensure.Event) {
				if ev.Kind == ensure.KindWaiting {
					told.Do(func() { waiting <- i })
				}
			}}, apiv1.ProgressDetail_PROGRESS_DETAIL_NONE)
		}()
	}
	for range n {
		select {
		case <-waiting:
		case <-time.After(30 * time.Second):
			t.Fatalf("the surviving replica's callers were not all waiting for a's lease within 30s\n%s", b.log)
		}
	}
	a.cmd.Process.Kill() // kill -9
	select {
	case err := <-aDone:
		if err == nil {
			t.Error("the killed replica's caller got a result")
		}
	case <-time.After(30 * time.Second):
		t.Error("the killed replica's caller did not end within 30s")
	}
	start := time.Now()
	wg.Wait()
	for i := range results {
		if errs[i] != nil {
			t.Fatalf("caller %d on the surviving replica: %v\n%s", i, errs[i], b.log)
		}
		if results[i].Digest != results[0].Digest {
			t.Errorf("caller %d got %s, caller 0 %s", i, results[i].Digest, results[0].Digest)
		}
	}
	t.Logf("the surviving replica finished %s after the kill", time.Since(start).Round(time.Millisecond))
	repo := img.Identity.Registry + "/" + img.Identity.Repository
	if puts := testenv.CountManifestPuts(t, env.RegistryLog, repo); puts != 1 {
		t.Errorf("%d manifest PUTs for %s, want 1", puts, repo)
	}
}

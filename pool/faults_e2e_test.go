package pool_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ispec-dev/ispec/builder"
	"github.com/ispec-dev/ispec/cache"
	"github.com/ispec-dev/ispec/ensure"
	"github.com/ispec-dev/ispec/internal/testenv"
	"github.com/ispec-dev/ispec/pool"
	"github.com/ispec-dev/ispec/spec"
)

// faultSpec loads a spec on the devenv's base whose one step runs cmd.
func faultSpec(t *testing.T, env *testenv.Env, cmd string) *spec.Image {
	t.Helper()
	dir := t.TempDir()
	doc := fmt.Sprintf("name: faults-%d\nregistry: %s/faults\nbase_image: %s\ncommands: [%q]\n", time.Now().UnixNano(), env.Registry, env.BaseBusybox, cmd)
	path := filepath.Join(dir, "spec.yaml")
	if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := spec.Load(context.Background(), path, spec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// faultPipeline is a pipeline that remembers failures for an hour, on
// pl, without a registry cache.
func faultPipeline(t *testing.T, pl *pool.Pool) *ensure.Pipeline {
	t.Helper()
	remote, err := cache.NewRemote()
	if err != nil {
		t.Fatal(err)
	}
	p, err := ensure.New(ensure.WithLookup(remote), ensure.WithBuilder(pl), ensure.WithFailureTTL(time.Hour), ensure.WithRegistryCache(builder.CacheOff, ""))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// stepStarted returns a sink that closes the channel it returns when the
// spec's command step starts running.
func stepStarted() (ensure.Sink, <-chan struct{}) {
	ch := make(chan struct{})
	closed := false
	return func(ev ensure.Event) {
		if closed || ev.Kind != ensure.KindProgress {
			return
		}
		for _, v := range ev.Status.Vertexes {
			if strings.HasPrefix(v.Name, "[ispec] commands") && v.Started != nil && !v.Cached {
				closed = true
				close(ch)
				return
			}
		}
	}, ch
}

func within(t *testing.T, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("%s: not within %s", what, d)
	}
}

// TestBuildkitKilledMidBuildIsNotRemembered: BuildKit dies while a step
// runs, and comes back; the next call of the same tag builds instead of
// getting the first call's failure again.
func TestBuildkitKilledMidBuildIsNotRemembered(t *testing.T) {
	env := testenv.Load(t)
	d := env.StartBuildkitd(t)
	pl, err := pool.New([]string{d.Host}, builder.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	p := faultPipeline(t, pl)
	img := faultSpec(t, env, fmt.Sprintf("sleep 5; echo %d > /killed.txt", time.Now().UnixNano()))
	sink, started := stepStarted()
	failed := make(chan error, 1)
	go func() {
		_, err := p.Ensure(context.Background(), img, ensure.Request{Sink: sink})
		failed <- err
	}()
	within(t, started, 2*time.Minute, "the step started")
	d.Kill()
	err = <-failed
	if err == nil {
		t.Fatal("the build survived its daemon")
	}
	if c := ensure.ClassOf(err); c != ensure.ClassUnavailable || ensure.Remembered(err) {
		t.Errorf("killed daemon: %v (class %s, remembered %v), want unavailable and not remembered", err, c, ensure.Remembered(err))
	}
	d.Start()
	res, err := p.Ensure(context.Background(), img, ensure.Request{})
	if err != nil {
		t.Fatalf("after the daemon came back: %v", err)
	}
	if res.Outcome != ensure.OutcomeBuilt {
		t.Errorf("outcome %s, want built", res.Outcome)
	}
}

// TestBuildkitThatComesUpLateIsUsed: a pipeline made while its daemon is
// down fails as unavailable (not remembered), and builds once the daemon
// answers.
func TestBuildkitThatComesUpLateIsUsed(t *testing.T) {
	env := testenv.Load(t)
	d := env.StartBuildkitd(t)
	d.Stop()
	pl, err := pool.New([]string{d.Host}, builder.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	p := faultPipeline(t, pl)
	img := faultSpec(t, env, fmt.Sprintf("echo %d > /late.txt", time.Now().UnixNano()))
	_, err = p.Ensure(context.Background(), img, ensure.Request{})
	var down *builder.UnavailableError
	if !errors.As(err, &down) || ensure.Remembered(err) {
		t.Fatalf("with no daemon: %v, want unavailable and not remembered", err)
	}
	if err := pl.Check(context.Background()); err == nil {
		t.Error("Check: a daemon answers, with none running")
	}
	d.Start()
	if err := pl.Check(context.Background()); err != nil {
		t.Errorf("Check with the daemon up: %v", err)
	}
	res, err := p.Ensure(context.Background(), img, ensure.Request{})
	if err != nil || res.Outcome != ensure.OutcomeBuilt {
		t.Fatalf("with the daemon up: %v, %v; want built", res, err)
	}
}

// TestHealthCheckThatTimesOutDoesNotKillARunningBuild: while a build
// runs, the daemon stops answering for longer than the health timeout
// (another build's check fails); the running build completes.
func TestHealthCheckThatTimesOutDoesNotKillARunningBuild(t *testing.T) {
	env := testenv.Load(t)
	d := env.StartBuildkitd(t)
	pl, err := pool.New([]string{d.Host}, builder.Options{}, pool.WithHealthTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	p := faultPipeline(t, pl)
	long := faultSpec(t, env, fmt.Sprintf("sleep 4; echo %d > /long.txt", time.Now().UnixNano()))
	sink, started := stepStarted()
	done := make(chan error, 1)
	go func() {
		_, err := p.Ensure(context.Background(), long, ensure.Request{Sink: sink})
		done <- err
	}()
	within(t, started, 2*time.Minute, "the long step started")
	d.Pause()
	other := faultSpec(t, env, fmt.Sprintf("echo %d > /other.txt", time.Now().UnixNano()))
	_, err = p.Ensure(context.Background(), other, ensure.Request{})
	d.Resume()
	var down *builder.UnavailableError
	if !errors.As(err, &down) {
		t.Errorf("the build whose health check timed out: %v, want unavailable", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("the running build: %v", err)
	}
}

package pool_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ispec-dev/ispec/builder"
	"github.com/ispec-dev/ispec/cache"
	"github.com/ispec-dev/ispec/ensure"
	"github.com/ispec-dev/ispec/internal/testenv"
	"github.com/ispec-dev/ispec/pool"
	"github.com/ispec-dev/ispec/spec"
)

// TestRelatedSpecsReuseTheAptLayer: on a pool of two fresh daemons, with
// no registry cache to fall back on, a second spec with the same base and
// apt set as a built one lands on the same daemon and BuildKit reports its
// apt step cached; only what differs runs.
func TestRelatedSpecsReuseTheAptLayer(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test skipped in -short mode")
	}
	env := testenv.Load(t)
	var addrs []string
	for i := 0; i < 2; i++ {
		addrs = append(addrs, env.StartBuildkitd(t).Host)
	}
	pl, err := pool.New(addrs, builder.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	remote, err := cache.NewRemote()
	if err != nil {
		t.Fatal(err)
	}
	p, err := ensure.New(ensure.WithLookup(remote), ensure.WithBuilder(pl), ensure.WithRegistryCache(builder.CacheOff, ""))
	if err != nil {
		t.Fatal(err)
	}
	nonce := time.Now().UnixNano()
	build := func(name string) (daemon string, aptCached bool) {
		t.Helper()
		dir := t.TempDir()
		doc := fmt.Sprintf("name: pool-%s-%d\nregistry: %s/pool\nbase_image: %s\napt_packages: [jq]\ncommands: [%q]\n", name, nonce, env.Registry, env.BasePython, fmt.Sprintf("echo %s %d > /which.txt", name, nonce))
		path := filepath.Join(dir, "spec.yaml")
		if err := os.WriteFile(path, []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
		img, err := spec.Load(context.Background(), path, spec.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		cached, ran := false, false
		res, err := p.Ensure(context.Background(), img, ensure.Request{Sink: func(ev ensure.Event) {
			if ev.Kind != ensure.KindProgress {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			for _, v := range ev.Status.Vertexes {
				if !strings.HasPrefix(v.Name, "[ispec] apt-get install") {
					continue
				}
				if v.Cached {
					cached = true
				} else if v.Started != nil {
					ran = true
				}
			}
		}})
		if err != nil {
			t.Fatalf("building %s: %v", name, err)
		}
		for _, b := range p.Builds() {
			if b.ID == res.BuildID && b.Result != nil {
				daemon = b.Result.Daemon
			}
		}
		return daemon, cached && !ran
	}
	d1, cached1 := build("first")
	d2, cached2 := build("second")
	if d1 == "" || d1 != d2 {
		t.Fatalf("built on %q then %q: want one daemon for one base and apt set", d1, d2)
	}
	if cached1 {
		t.Error("the first build's apt step was cached on a fresh daemon")
	}
	if !cached2 {
		t.Error("the second build ran the apt step again: its daemon's cache was not used")
	}
}

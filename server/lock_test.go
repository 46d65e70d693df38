package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	apiv1 "github.com/ispec-dev/ispec/api/ispec/v1"
	"github.com/ispec-dev/ispec/builder"
	"github.com/ispec-dev/ispec/cache"
	"github.com/ispec-dev/ispec/ensure"
	"github.com/ispec-dev/ispec/locker"
	"github.com/ispec-dev/ispec/pylock"
	"github.com/ispec-dev/ispec/server"
	"github.com/ispec-dev/ispec/spec"
)

// pinnedBase answers every base with the same digests.
type pinnedBase struct{}

func (pinnedBase) ResolvePlatforms(_ context.Context, ref name.Reference, plats []v1.Platform) (cache.Resolved, error) {
	res := cache.Resolved{Ref: ref.Name(), Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("a", 64)}}
	for _, p := range plats {
		res.Platforms = append(res.Platforms, cache.PlatformDigest{Platform: p, Digest: v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("b", 64)}})
	}
	return res, nil
}

// gatedPython resolves to one pin once release is closed, telling entered
// when a resolution starts, and records the netrc it was given.
type gatedPython struct {
	entered chan struct{}
	release chan struct{}
	netrc   chan string
}

func (g *gatedPython) ResolvePython(ctx context.Context, _ *spec.Image, opts builder.ResolveOptions) ([]pylock.Pin, error) {
	g.entered <- struct{}{}
	g.netrc <- string(opts.PipNetrc)
	select {
	case <-g.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return []pylock.Pin{{Name: "demo", Version: "1.0", File: "demo-1.0-py3-none-any.whl", URL: "http://pypi.lan/demo", SHA256: strings.Repeat("c", 64)}}, nil
}

// TestLockIsBoundedAndUsesTheServersNetrc: with WithMaxLocks(1), a Lock
// while another resolves is RESOURCE_EXHAUSTED at once; the resolution
// gets the server's netrc (a .netrc in the caller's upload is only a
// file); once it ends the next Lock is served, and the lock answered
// parses with the Python pins.
func TestLockIsBoundedAndUsesTheServersNetrc(t *testing.T) {
	py := &gatedPython{entered: make(chan struct{}, 2), release: make(chan struct{}), netrc: make(chan string, 2)}
	lk, err := locker.New(pinnedBase{}, locker.WithPython(py), locker.WithPipNetrc([]byte("machine pypi.lan login server")))
	if err != nil {
		t.Fatal(err)
	}
	reg := &memRegistry{tags: map[string]v1.Hash{}}
	r := startRun(t, server.Config{
		Listen:  "127.0.0.1:0",
		Options: []server.Option{server.WithMaxLocks(1)},
		Backend: func(ctx context.Context, _ prometheus.Registerer) (*server.Backend, error) {
			p, err := ensure.New(ensure.WithLookup(reg), ensure.WithBuilder(&loudBuilder{reg: reg}), ensure.WithContext(ctx))
			if err != nil {
				return nil, err
			}
			return &server.Backend{Pipeline: p, Lookup: reg, Locker: lk}, nil
		},
	})
	c := apiv1.NewImageServiceClient(dial(t, r.addr))
	in := &apiv1.SpecInput{SpecPath: "spec.yaml", Spec: []byte("name: lk\nregistry: registry.lan/x\nbase_image: registry.lan/base:1\npackages: [demo]\n"),
		Files: []*apiv1.File{regular(".netrc", "machine pypi.lan login caller\n")}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	first := make(chan *apiv1.LockResponse, 1)
	go func() {
		res, err := c.Lock(ctx, &apiv1.LockRequest{Input: in})
		if err != nil {
			t.Errorf("the first Lock: %v", err)
		}
		first <- res
	}()
	<-py.entered
	if got := <-py.netrc; got != "machine pypi.lan login server" {
		t.Errorf("pip got the netrc %q, want the server's", got)
	}
	if _, err := c.Lock(ctx, &apiv1.LockRequest{Input: in}); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("a Lock while the only slot resolves: %v, want RESOURCE_EXHAUSTED", err)
	}
	close(py.release)
	res := <-first
	l, err := spec.ParseLock("spec.yaml.lock", res.GetLock())
	if err != nil || l.Python == nil || len(l.Python.Platforms["linux/amd64"].Packages) != 1 {
		t.Fatalf("lock %s: %v; want demo pinned", res.GetLock(), err)
	}
	if _, err := c.Lock(ctx, &apiv1.LockRequest{Input: in}); err != nil {
		t.Errorf("a Lock once the slot is free: %v", err)
	}
}

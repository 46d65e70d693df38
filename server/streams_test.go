package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	bkclient "github.com/moby/buildkit/client"
	godigest "github.com/opencontainers/go-digest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	apiv1 "github.com/ispec-dev/ispec/api/ispec/v1"
	"github.com/ispec-dev/ispec/builder"
	"github.com/ispec-dev/ispec/cache"
	"github.com/ispec-dev/ispec/client"
	"github.com/ispec-dev/ispec/ensure"
	"github.com/ispec-dev/ispec/server"
	"github.com/ispec-dev/ispec/spec"
)

// memRegistry is a lookup over the tags a fake builder pushed.
type memRegistry struct {
	mu   sync.Mutex
	tags map[string]v1.Hash
}

func (r *memRegistry) Lookup(_ context.Context, ref name.Tag) cache.Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d, ok := r.tags[ref.Name()]; ok {
		return cache.Result{Ref: ref, State: cache.Exists, Digest: d}
	}
	return cache.Result{Ref: ref, State: cache.Absent}
}

// loudBuilder tells that it was called, waits for start, logs n bytes
// in 4 KiB lines, publishes a step named "logged", waits for finish, then
// pushes.
type loudBuilder struct {
	reg           *memRegistry
	n             int
	called        chan struct{} // closed when the first build reaches the builder
	calledOnce    sync.Once
	start, finish chan struct{}
	logged        chan struct{} // closed once the logs are out
}

func (b *loudBuilder) Build(ctx context.Context, img *spec.Image, opts builder.BuildOptions) (*builder.Result, error) {
	b.calledOnce.Do(func() { close(b.called) })
	for _, gate := range []chan struct{}{b.start, nil, b.finish} {
		if gate == nil {
			d := godigest.FromString("make")
			line := []byte(strings.Repeat("z", 4095) + "\n")
			for sent := 0; sent < b.n; sent += len(line) {
				opts.Progress.Publish(&bkclient.SolveStatus{
					Vertexes: []*bkclient.Vertex{{Digest: d, Name: "[ispec] commands[0] make"}},
					Logs:     []*bkclient.VertexLog{{Vertex: d, Data: line}},
				})
			}
			opts.Progress.Publish(&bkclient.SolveStatus{Vertexes: []*bkclient.Vertex{{Digest: godigest.FromString("logged"), Name: "logged"}}})
			close(b.logged)
			continue
		}
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if opts.BeforePush != nil {
		if err := opts.BeforePush(ctx); err != nil {
			return nil, err
		}
	}
	t, _ := name.NewTag(opts.Ref)
	d, _ := v1.NewHash("sha256:" + godigest.FromString(opts.Ref).Encoded())
	b.reg.mu.Lock()
	b.reg.tags[t.Name()] = d
	b.reg.mu.Unlock()
	return &builder.Result{Ref: opts.Ref, Digest: d.String()}, nil
}

// logLines is a slog handler that tells of each message it gets.
type logLines struct{ ch chan string }

func (l logLines) Enabled(context.Context, slog.Level) bool { return true }
func (l logLines) Handle(_ context.Context, r slog.Record) error {
	select {
	case l.ch <- r.Message:
	default:
	}
	return nil
}
func (l logLines) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l logLines) WithGroup(string) slog.Handler      { return l }

type fakeServer struct {
	addr string
	p    *ensure.Pipeline
	b    *loudBuilder
	logs chan string
}

func startFake(t *testing.T, logBytes int, opts ...server.Option) *fakeServer {
	t.Helper()
	reg := &memRegistry{tags: map[string]v1.Hash{}}
	b := &loudBuilder{reg: reg, n: logBytes, called: make(chan struct{}), start: make(chan struct{}), finish: make(chan struct{}), logged: make(chan struct{})}
	p, err := ensure.New(ensure.WithLookup(reg), ensure.WithBuilder(b))
	if err != nil {
		t.Fatal(err)
	}
	logs := make(chan string, 100)
	srv, err := server.New(p, reg, append([]server.Option{server.WithUploadDir(t.TempDir()), server.WithLogger(slog.New(logLines{logs}))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeServer{addr: serveLoopback(t, srv), p: p, b: b, logs: logs}
}

func fakeSpec(t *testing.T) *spec.Image {
	t.Helper()
	dir := t.TempDir()
	text := fmt.Sprintf("name: loud-%d\nregistry: reg.example/e2e\nbase_image: reg.example/base:1\ncommands: [\"make\"]\n", time.Now().UnixNano())
	p := filepath.Join(dir, "spec.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := spec.Load(context.Background(), p, spec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// startBuild starts a build through the client (which reads every event)
// and returns its id once it runs, and its result.
func (s *fakeServer) startBuild(t *testing.T) (string, <-chan error) {
	t.Helper()
	id, done, _ := s.startBuildSeen(t, apiv1.ProgressDetail_PROGRESS_DETAIL_NONE)
	return id, done
}

// startBuildSeen is startBuild; seen is closed once the caller has read
// the step named "logged".
func (s *fakeServer) startBuildSeen(t *testing.T, detail apiv1.ProgressDetail) (string, <-chan error, <-chan struct{}) {
	t.Helper()
	seen := make(chan struct{})
	var once sync.Once
	sink := func(ev ensure.Event) {
		if ev.Status == nil {
			return
		}
		for _, v := range ev.Status.Vertexes {
			if v.Name == "logged" {
				once.Do(func() { close(seen) })
			}
		}
	}
	c, err := client.Dial(s.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	done := make(chan error, 1)
	img := fakeSpec(t)
	go func() {
		res, err := c.Build(context.Background(), img, ensure.Request{Sink: sink}, detail)
		if err == nil && res.Outcome != ensure.OutcomeBuilt {
			err = fmt.Errorf("outcome %s, want built", res.Outcome)
		}
		done <- err
	}()
	select {
	case <-s.b.called:
	case err := <-done:
		t.Fatalf("the build ended before it reached the builder: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("the build did not reach the builder within 30s")
	}
	b := s.p.Builds()
	if len(b) != 1 {
		t.Fatalf("%d builds running, want 1", len(b))
	}
	return b[0].ID, done, seen
}

func (s *fakeServer) watch(t *testing.T, id string) apiv1.ImageService_WatchClient {
	t.Helper()
	conn, err := grpc.NewClient(s.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	w, err := apiv1.NewImageServiceClient(conn).Watch(context.Background(), &apiv1.WatchRequest{BuildId: id, Progress: apiv1.ProgressDetail_PROGRESS_DETAIL_FULL})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestAWatcherThatStopsReadingIsEndedAndTheBuildGoesOn(t *testing.T) {
	s := startFake(t, 32<<20, server.WithSendTimeout(300*time.Millisecond))
	id, built := s.startBuild(t)
	stuck := s.watch(t, id) // never read until the server gave up on it
	if _, err := stuck.Header(); err != nil {
		t.Fatal(err)
	}
	close(s.b.start) // 32 MiB of logs: more than gRPC's windows hold
	timeout := time.After(60 * time.Second)
wait:
	for {
		select {
		case msg := <-s.logs:
			if strings.Contains(msg, "stopped reading") {
				break wait
			}
		case err := <-built:
			t.Fatalf("the build ended before the stuck watcher was: %v", err)
		case <-timeout:
			t.Fatal("the stuck watcher's stream was not ended")
		}
	}
	close(s.b.finish)
	if err := <-built; err != nil {
		t.Fatalf("the build after a watcher was ended: %v", err)
	}
	for {
		_, err := stuck.Recv()
		if err == nil {
			continue
		}
		if status.Code(err) != codes.DeadlineExceeded {
			t.Errorf("the stuck watcher's stream ended with %v, want DEADLINE_EXCEEDED", err)
		}
		break
	}
}

func TestTenMegabytesOfLogsAndTwentyLateWatchersStayUnderTwiceTheCap(t *testing.T) {
	const logged, capBytes = 10 << 20, builder.DefaultProgressLogLimit
	s := startFake(t, logged)
	heap := func() uint64 {
		var m runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&m)
		return m.HeapAlloc
	}
	base := heap()
	id, built, callerSaw := s.startBuildSeen(t, apiv1.ProgressDetail_PROGRESS_DETAIL_STEPS)
	close(s.b.start)
	select {
	case <-callerSaw: // the build's caller read every log
	case <-time.After(60 * time.Second):
		t.Fatal("the build did not log")
	}
	// Twenty watchers join once the logs are out; each reads until the
	// step that follows them.
	type seen struct {
		bytes int
		err   error
	}
	caught := make(chan seen, 20)
	streams := make([]apiv1.ImageService_WatchClient, 20)
	for i := range streams {
		w := s.watch(t, id)
		streams[i] = w
		go func() {
			n := 0
			for {
				ev, err := w.Recv()
				if err != nil {
					caught <- seen{n, err}
					return
				}
				p := ev.GetProgress()
				for _, l := range p.GetLogs() {
					n += len(l.GetData())
				}
				for _, v := range p.GetVertexes() {
					if v.GetName() == "logged" {
						caught <- seen{n, nil}
					}
				}
			}
		}()
	}
	for range streams {
		select {
		case c := <-caught:
			if c.err != nil {
				t.Fatalf("a watcher: %v", c.err)
			}
			if c.bytes > capBytes+300<<10 {
				t.Errorf("a late watcher got %d log bytes of %d; want about the %d cap", c.bytes, logged, capBytes)
			}
		case err := <-built:
			t.Fatalf("the build ended early: %v", err)
		case <-time.After(60 * time.Second):
			t.Fatal("the watchers did not catch up")
		}
	}
	grown := int64(heap()) - int64(base)
	t.Logf("heap grew by %d KiB with the build's %d MiB of logs and 20 watchers (cap %d KiB)", grown>>10, logged>>20, capBytes>>10)
	if grown >= 2*capBytes {
		t.Errorf("the server's heap grew by %d bytes; want less than twice the %d byte cap", grown, capBytes)
	}
	close(s.b.finish)
	if err := <-built; err != nil {
		t.Fatal(err)
	}
}

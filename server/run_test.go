package server_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	apiv1 "github.com/ispec-dev/ispec/api/ispec/v1"
	"github.com/ispec-dev/ispec/client"
	"github.com/ispec-dev/ispec/ensure"
	"github.com/ispec-dev/ispec/server"
)

// running is a server.Run under way in the test.
type running struct {
	addr, metrics net.Addr
	cancel        context.CancelFunc
	done          chan error
	b             *loudBuilder
	p             *ensure.Pipeline
	closed        atomic.Bool // Backend.Close was called
}

// startRun runs server.Run with cfg (its Backend a fake builder's
// pipeline unless cfg sets one) and waits until it serves.
func startRun(t *testing.T, cfg server.Config) *running {
	t.Helper()
	r := &running{done: make(chan error, 1)}
	reg := &memRegistry{tags: map[string]v1.Hash{}}
	r.b = &loudBuilder{reg: reg, called: make(chan struct{}), start: make(chan struct{}), finish: make(chan struct{}), logged: make(chan struct{})}
	close(r.b.start)
	if cfg.Backend == nil {
		cfg.Backend = func(ctx context.Context, _ prometheus.Registerer) (*server.Backend, error) {
			p, err := ensure.New(ensure.WithLookup(reg), ensure.WithBuilder(r.b), ensure.WithContext(ctx))
			if err != nil {
				return nil, err
			}
			r.p = p
			return &server.Backend{Pipeline: p, Lookup: reg, Close: func() { r.closed.Store(true) }}, nil
		}
	}
	cfg.Options = append(cfg.Options, server.WithUploadDir(t.TempDir()))
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ready := make(chan struct{})
	cfg.Ready = func(addr, metrics net.Addr) { r.addr, r.metrics = addr, metrics; close(ready) }
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- server.Run(ctx, cfg) }()
	select {
	case <-ready:
	case err := <-r.done:
		t.Fatalf("Run ended before serving: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not serve within 20s")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case <-r.done:
		case <-time.After(30 * time.Second):
			t.Error("Run did not end within 30s of the test")
		}
	})
	return r
}

// stop ends Run's context and returns its error, failing when it takes
// more than d.
func (r *running) stop(t *testing.T, d time.Duration) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(d):
		t.Fatalf("Run did not return within %s of its context ending", d)
		return nil
	}
}

func dial(t *testing.T, addr net.Addr) *grpc.ClientConn {
	t.Helper()
	target := addr.String()
	if addr.Network() == "unix" {
		target = "unix://" + target
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// awaitHealth waits until the server's overall health is want, following
// the health service's Watch stream.
func awaitHealth(t *testing.T, conn *grpc.ClientConn, want grpc_health_v1.HealthCheckResponse_ServingStatus) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	w, err := grpc_health_v1.NewHealthClient(conn).Watch(ctx, &grpc_health_v1.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for {
		resp, err := w.Recv()
		if err != nil {
			t.Fatalf("health never became %s: %v", want, err)
		}
		if resp.Status == want {
			return
		}
	}
}

func TestRunDrainsWhenItsContextEnds(t *testing.T) {
	r := startRun(t, server.Config{Listen: "127.0.0.1:0", ShutdownGrace: time.Minute})
	if r.addr.(*net.TCPAddr).Port == 0 {
		t.Fatalf("Ready got %s, want the bound port", r.addr)
	}
	conn := dial(t, r.addr)
	awaitHealth(t, conn, grpc_health_v1.HealthCheckResponse_SERVING)
	c, err := client.Dial(r.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	built := make(chan error, 1)
	go func() {
		res, err := c.Build(context.Background(), fakeSpec(t), ensure.Request{}, apiv1.ProgressDetail_PROGRESS_DETAIL_NONE)
		if err == nil && res.Outcome != ensure.OutcomeBuilt {
			err = errors.New("outcome " + res.Outcome.String())
		}
		built <- err
	}()
	<-r.b.logged // the build runs

	r.cancel()
	awaitHealth(t, conn, grpc_health_v1.HealthCheckResponse_NOT_SERVING)
	_, err = c.Build(context.Background(), fakeSpec(t), ensure.Request{}, apiv1.ProgressDetail_PROGRESS_DETAIL_NONE)
	if ensure.ClassOf(err) != ensure.ClassUnavailable || !strings.Contains(err.Error(), "shutting down") {
		t.Errorf("a new build while draining: %v, want unavailable: shutting down", err)
	}
	select {
	case err := <-r.done:
		t.Fatalf("Run returned (%v) while a build ran within the grace period", err)
	default:
	}
	close(r.b.finish)
	if err := <-built; err != nil {
		t.Errorf("the running build: %v, want built", err)
	}
	if err := r.stop(t, 20*time.Second); err != nil {
		t.Errorf("Run: %v, want nil after a drain", err)
	}
	if !r.closed.Load() {
		t.Error("the backend was not closed")
	}
}

func TestRunStopsBuildsAtTheEndOfTheGracePeriod(t *testing.T) {
	r := startRun(t, server.Config{Listen: "127.0.0.1:0", ShutdownGrace: 50 * time.Millisecond})
	c, err := client.Dial(r.addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	built := make(chan error, 1)
	go func() {
		_, err := c.Build(context.Background(), fakeSpec(t), ensure.Request{}, apiv1.ProgressDetail_PROGRESS_DETAIL_NONE)
		built <- err
	}()
	<-r.b.logged
	// The build never finishes by itself: the grace period ends it.
	if err := r.stop(t, 20*time.Second); err != nil {
		t.Errorf("Run: %v, want nil", err)
	}
	if err := <-built; err == nil {
		t.Error("the build stopped at the end of the grace period succeeded")
	}
}

func TestRunEndsCallsThatOutliveTheStopTimeout(t *testing.T) {
	r := startRun(t, server.Config{Listen: "127.0.0.1:0", StopTimeout: 100 * time.Millisecond})
	conn := dial(t, r.addr)
	// A health Watch stream stays open until its caller ends it: only the
	// stop timeout closes it.
	w, err := grpc_health_v1.NewHealthClient(conn).Watch(context.Background(), &grpc_health_v1.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Recv(); err != nil {
		t.Fatal(err)
	}
	if err := r.stop(t, 20*time.Second); err != nil {
		t.Errorf("Run: %v, want nil", err)
	}
	for {
		if _, err := w.Recv(); err != nil {
			break // the connection was closed under the stream
		}
	}
}

func TestRunListensOnAUnixSocket(t *testing.T) {
	dir, err := os.MkdirTemp("", "run") // short: a socket path has a length limit
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "s.sock")
	r := startRun(t, server.Config{Listen: "unix://" + sock})
	st, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want 0600", st.Mode().Perm())
	}
	awaitHealth(t, dial(t, r.addr), grpc_health_v1.HealthCheckResponse_SERVING)
	if err := r.stop(t, 20*time.Second); err != nil {
		t.Errorf("Run: %v", err)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the socket is still there after Run: %v", err)
	}
}

func TestRunReadsTheTokenFileAgainWhenItChanges(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	writeRenamed(t, tokens, "alice:first-token\n")
	r := startRun(t, server.Config{Listen: "127.0.0.1:0", TokenFile: tokens, TokenFileOptions: []server.TokenFileOption{server.WithCheckEvery(0)}})
	api := apiv1.NewImageServiceClient(dial(t, r.addr))
	call := func(token string) error {
		ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+token)
		_, err := api.ListBuilds(ctx, &apiv1.ListBuildsRequest{})
		return err
	}
	if err := call("first-token"); err != nil {
		t.Fatalf("with the file's token: %v", err)
	}
	// Rotated as a Kubernetes Secret is: a new file renamed into place.
	writeRenamed(t, tokens, "alice:the-second-token\n")
	if err := call("first-token"); status.Code(err) != codes.Unauthenticated {
		t.Errorf("the rotated-out token: %v, want UNAUTHENTICATED", err)
	}
	if err := call("the-second-token"); err != nil {
		t.Errorf("the new token: %v", err)
	}
}

func writeRenamed(t *testing.T, path, text string) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func TestRunHealthFollowsTheBackend(t *testing.T) {
	reports := make(chan func(error), 1)
	reg := &memRegistry{tags: map[string]v1.Hash{}}
	r := startRun(t, server.Config{Listen: "127.0.0.1:0", Backend: func(ctx context.Context, _ prometheus.Registerer) (*server.Backend, error) {
		p, err := ensure.New(ensure.WithLookup(reg), ensure.WithContext(ctx))
		if err != nil {
			return nil, err
		}
		return &server.Backend{Pipeline: p, Lookup: reg, Health: func(ctx context.Context, _ time.Duration, report func(error)) {
			reports <- report
			<-ctx.Done()
		}}, nil
	}})
	conn := dial(t, r.addr)
	awaitHealth(t, conn, grpc_health_v1.HealthCheckResponse_NOT_SERVING) // until BuildKit answers
	report := <-reports
	report(nil)
	awaitHealth(t, conn, grpc_health_v1.HealthCheckResponse_SERVING)
	report(errors.New("connection refused"))
	awaitHealth(t, conn, grpc_health_v1.HealthCheckResponse_NOT_SERVING)
}

func TestRunServesMetrics(t *testing.T) {
	r := startRun(t, server.Config{Listen: "127.0.0.1:0", MetricsListen: "127.0.0.1:0"})
	resp, err := http.Get("http://" + r.metrics.String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, m := range []string{"go_goroutines", "ispec_builds_in_flight", "grpc_server_handled_total"} {
		if !strings.Contains(string(body), m) {
			t.Errorf("/metrics has no %s", m)
		}
	}
}

func TestRunRefusesAnExposedServer(t *testing.T) {
	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	writeRenamed(t, tokens, "alice:first-token\n")
	noBackend := func(context.Context, prometheus.Registerer) (*server.Backend, error) {
		t.Error("the backend was made for a configuration Run refuses")
		return nil, errors.New("refused")
	}
	for _, tc := range []struct {
		name string
		cfg  server.Config
		want string
	}{
		{"no authentication", server.Config{Listen: "0.0.0.0:0"}, "needs authentication"},
		{"tokens in plain text", server.Config{Listen: "0.0.0.0:0", TokenFile: tokens}, "plain text"},
		{"client CA without a certificate", server.Config{Listen: "127.0.0.1:0", TLS: server.TLSFiles{ClientCA: tokens}}, "client-ca needs tls-cert"},
		{"a missing token file", server.Config{Listen: "127.0.0.1:0", TokenFile: filepath.Join(dir, "nope")}, "token-file"},
		{"a bad address", server.Config{Listen: "127.0.0.1:http-alt-nope"}, "listen"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.Backend = noBackend
			err := server.Run(context.Background(), tc.cfg)
			if !errors.Is(err, server.ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Run: %v, want a configuration error saying %q", err, tc.want)
			}
		})
	}
}

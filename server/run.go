package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"

	apiv1 "github.com/ispec-dev/ispec/api/ispec/v1"
	"github.com/ispec-dev/ispec/ensure"
	"github.com/ispec-dev/ispec/internal/netaddr"
	"github.com/ispec-dev/ispec/locker"
)

// Config is how Run serves: where it listens, who may call, how it
// drains, and the pipeline behind it.
type Config struct {
	// Listen is HOST:PORT, or unix:///PATH for a socket only this user
	// may use (see Listen). Required.
	Listen string
	// MetricsListen is the HOST:PORT of the Prometheus /metrics
	// endpoint; empty: none.
	MetricsListen string
	// TLS is the server's certificate and the CA of its callers'; zero:
	// plain text.
	TLS TLSFiles
	// TokenFile is a file of bearer tokens (see ParseTokens), read again
	// when it changes; empty: no tokens. TokenFileOptions configure it.
	TokenFile        string
	TokenFileOptions []TokenFileOption
	// TLSTerminatedByProxy allows tokens over plain text on a
	// non-loopback address: a proxy in front terminates TLS.
	TLSTerminatedByProxy bool
	// ShutdownGrace is how long running builds may finish once ctx ends
	// before they are stopped.
	ShutdownGrace time.Duration
	// SettleTimeout is how long stopped builds may take to release their
	// leases before the backend is closed under them. Default 30s.
	SettleTimeout time.Duration
	// StopTimeout is how long open calls may take to end after the builds
	// before the connections are closed. Default 5s.
	StopTimeout time.Duration
	// HealthEvery is how often Backend.Health is asked. Default 5s.
	HealthEvery time.Duration
	// Logger receives the lifecycle's messages. Default slog.Default().
	Logger *slog.Logger
	// LogAttrs are added to the "serving" message (the backend's
	// settings).
	LogAttrs []any
	// Backend makes the pipeline served. ctx is the one builds run under:
	// it ends only when the grace period does, not when Run's does. reg
	// is the metrics registry. Required.
	Backend func(ctx context.Context, reg prometheus.Registerer) (*Backend, error)
	// Options configure the Server (New).
	Options []Option
	// Ready, when set, is called once Run serves, with the addresses it
	// bound (metrics nil without MetricsListen).
	Ready func(addr, metrics net.Addr)
}

// TLSFiles are PEM files: the server's certificate and key, and the CA
// whose client certificates authenticate callers (mTLS; needs Cert and
// Key).
type TLSFiles struct {
	Cert, Key, ClientCA string
}

// Backend is what Run serves: a pipeline, its lookup, and the health of
// what it builds with.
type Backend struct {
	Pipeline *ensure.Pipeline
	Lookup   ensure.Lookup
	// Locker answers Lock calls; nil: they are UNIMPLEMENTED.
	Locker *locker.Locker
	// Health checks the builders every interval until ctx ends, calling
	// report with the first answer and each change (nil: they answer).
	// Nil: always healthy.
	Health func(ctx context.Context, every time.Duration, report func(error))
	// Close, when set, is called once every build has ended.
	Close func()
}

// ErrConfig is matched (errors.Is) by Run's errors that come from its
// Config: an address, a certificate, a token file, a combination that
// would expose the server.
var ErrConfig = errors.New("invalid server configuration")

// ConfigError is an error of Config's Setting (named as the CLI's flag).
type ConfigError struct {
	Setting string
	Err     error
}

func (e *ConfigError) Error() string {
	if e.Setting == "" {
		return e.Err.Error()
	}
	return e.Setting + ": " + e.Err.Error()
}

func (e *ConfigError) Unwrap() []error { return []error{e.Err, ErrConfig} }

// Run serves ImageService until ctx ends, then drains: health turns
// NOT_SERVING, new builds are refused (a caller of a tag still building
// joins it), running builds finish within ShutdownGrace (then they are
// stopped), the backend is closed and the connections end. It returns nil
// after a drain, a *ConfigError for a bad Config, or the error that ended
// serving.
func Run(ctx context.Context, cfg Config) error {
	cfg = cfg.withDefaults()
	if cfg.Backend == nil {
		return &ConfigError{Err: errors.New("no backend")}
	}
	authn, creds, err := cfg.security()
	if err != nil {
		return err
	}
	// Who can reach the server is decided from the address it bound, not
	// from how Listen spells it.
	lis, err := Listen(cfg.Listen)
	if err != nil {
		return &ConfigError{Setting: "listen", Err: err}
	}
	defer lis.Close()
	if err := cfg.checkExposure(lis.Addr(), authn, creds != nil); err != nil {
		return err
	}
	// Builds run under their own context: the end of ctx drains, it does
	// not cancel; only the end of the grace period does.
	buildCtx, stopBuilds := context.WithCancel(context.Background())
	defer stopBuilds()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	be, err := cfg.Backend(buildCtx, reg)
	if err != nil {
		return err
	}
	if be.Close != nil {
		defer be.Close()
	}
	sopts := append([]Option{WithLogger(cfg.Logger), WithRegisterer(reg)}, cfg.Options...)
	if be.Locker != nil {
		sopts = append(sopts, WithLocker(be.Locker))
	}
	srv, err := New(be.Pipeline, be.Lookup, sopts...)
	if err != nil {
		return &ConfigError{Err: err}
	}
	defer srv.Close()
	gs, hs, err := srv.GRPC(authn, reg, creds)
	if err != nil {
		return err
	}
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	cfg.followHealth(watchCtx, be, hs)
	metrics, err := serveMetrics(cfg.MetricsListen, reg)
	if err != nil {
		return err
	}
	defer metrics.close()
	cfg.logServing(lis.Addr(), metrics.addr(), authn, creds != nil)
	if cfg.Ready != nil {
		cfg.Ready(lis.Addr(), metrics.addr())
	}
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	select {
	case err := <-served:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	cfg.drain(srv, hs, stopBuilds)
	stop(gs, cfg.StopTimeout)
	cfg.Logger.Info("stopped")
	return nil
}

func (cfg Config) withDefaults() Config {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.SettleTimeout <= 0 {
		cfg.SettleTimeout = 30 * time.Second
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 5 * time.Second
	}
	if cfg.HealthEvery <= 0 {
		cfg.HealthEvery = 5 * time.Second
	}
	return cfg
}

// checkExposure refuses an address others can reach without
// authentication, or with tokens in plain text.
func (cfg Config) checkExposure(bound net.Addr, authn *Auth, tls bool) error {
	local := netaddr.Local(bound)
	switch {
	case !authn.Enabled() && !local:
		return &ConfigError{Err: fmt.Errorf("listen %s (%s): a non-loopback address needs authentication: set --token-file or --client-ca", cfg.Listen, bound)}
	case authn.UsesTokens() && !tls && !local && !cfg.TLSTerminatedByProxy:
		return &ConfigError{Err: fmt.Errorf("listen %s (%s): bearer tokens would cross the network in plain text: serve TLS (--tls-cert and --tls-key), "+
			"or set --tls-terminated-by-proxy when a proxy or service mesh in front of the server terminates TLS", cfg.Listen, bound)}
	}
	return nil
}

// followHealth keeps the health NOT_SERVING until the backend's builders
// answer, and while none does.
func (cfg Config) followHealth(ctx context.Context, be *Backend, hs *health.Server) {
	if be.Health == nil {
		return
	}
	setHealth(hs, grpc_health_v1.HealthCheckResponse_NOT_SERVING)
	go be.Health(ctx, cfg.HealthEvery, func(err error) {
		if err != nil {
			cfg.Logger.Warn("buildkit does not answer: health NOT_SERVING until it does; builds fail as unavailable meanwhile", "error", err)
			setHealth(hs, grpc_health_v1.HealthCheckResponse_NOT_SERVING)
			return
		}
		cfg.Logger.Info("buildkit answers: health SERVING")
		setHealth(hs, grpc_health_v1.HealthCheckResponse_SERVING)
	})
}

// setHealth sets the server's health, overall and of ImageService (a
// no-op once the health server is shut down).
func setHealth(hs *health.Server, st grpc_health_v1.HealthCheckResponse_ServingStatus) {
	hs.SetServingStatus("", st)
	hs.SetServingStatus(apiv1.ImageService_ServiceDesc.ServiceName, st)
}

func (cfg Config) logServing(addr, metrics net.Addr, authn *Auth, tls bool) {
	if !authn.Enabled() {
		cfg.Logger.Warn("no authentication configured: listening on loopback or a unix socket only; every caller is the same one and sees every build", "listen", addr.String())
	}
	m := ""
	if metrics != nil {
		m = metrics.String()
	}
	attrs := append([]any{"listen", addr.String(), "tls", tls, "tls_terminated_by_proxy", cfg.TLSTerminatedByProxy, "metrics", m}, cfg.LogAttrs...)
	cfg.Logger.Info("serving", attrs...)
}

// drain refuses new builds and waits for the running ones: until the
// grace period ends, then (after stopping them) until they have released
// what they hold, at most SettleTimeout.
func (cfg Config) drain(srv *Server, hs *health.Server, stopBuilds func()) {
	srv.Drain()
	hs.Shutdown()
	// Logged once new builds are refused (tests wait for this line).
	cfg.Logger.Info("shutting down: no new builds; running builds finish", "grace", cfg.ShutdownGrace)
	if !waitIdle(srv, cfg.ShutdownGrace) {
		cfg.Logger.Warn("grace period over: stopping running builds")
		stopBuilds()
		// Stopped builds release their leases and write their final
		// records before the backend is closed.
		if !waitIdle(srv, cfg.SettleTimeout) {
			cfg.Logger.Warn("builds still stopping after the settle timeout: closing Redis and BuildKit under them (their leases expire)", "timeout", cfg.SettleTimeout)
		}
	}
}

// idlePoll is how often a draining server checks that its builds ended.
const idlePoll = 50 * time.Millisecond

// waitIdle waits until srv runs no build, at most d; it reports whether
// srv is idle.
func waitIdle(srv *Server, d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	tick := time.NewTicker(idlePoll)
	defer tick.Stop()
	for !srv.Idle() {
		select {
		case <-deadline.C:
			return srv.Idle()
		case <-tick.C:
		}
	}
	return true
}

// stop ends the open calls gracefully, at most d, then closes every
// connection.
func stop(gs *grpc.Server, d time.Duration) {
	stopped := make(chan struct{})
	go func() { gs.GracefulStop(); close(stopped) }()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-stopped:
	case <-t.C:
		gs.Stop()
	}
}

// metricsServer serves /metrics; the zero value serves nothing.
type metricsServer struct {
	srv *http.Server
	lis net.Listener
}

func serveMetrics(addr string, reg *prometheus.Registry) (metricsServer, error) {
	if addr == "" {
		return metricsServer{}, nil
	}
	ml, err := net.Listen("tcp", addr)
	if err != nil {
		return metricsServer{}, &ConfigError{Setting: "metrics-listen", Err: err}
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	hsrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go hsrv.Serve(ml)
	return metricsServer{srv: hsrv, lis: ml}, nil
}

func (m metricsServer) addr() net.Addr {
	if m.lis == nil {
		return nil
	}
	return m.lis.Addr()
}

func (m metricsServer) close() {
	if m.srv != nil {
		m.srv.Close()
	}
}

package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"

	apiv1 "github.com/ispec-dev/ispec/api/ispec/v1"
	"github.com/ispec-dev/ispec/coord"
	"github.com/ispec-dev/ispec/ensure"
	"github.com/ispec-dev/ispec/internal/netaddr"
	"github.com/ispec-dev/ispec/pool"
	"github.com/ispec-dev/ispec/server"
)

func newServeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the build service (gRPC ispec.v1.ImageService)",
		Long: `Serve ispec.v1.ImageService over gRPC: other tools resolve, look up and
build images through it, and concurrent callers of one tag share one build
(they join it: the same events from its start, the same result). A caller
that disconnects does not cancel a build others wait on; a failed build is
remembered for --failure-ttl, so retries get the original failure (only a
failed step or an invalid spec; --force builds again).

Health (grpc.health.v1) and server reflection are registered; Prometheus
metrics are served on --metrics-listen at /metrics.

Callers authenticate with a bearer token from --token-file (lines TOKEN,
NAME:TOKEN or NAME:TOKEN:admin; the file is read again when it changes,
as a rotated Kubernetes Secret does) or a client certificate signed by
--client-ca (with --tls-cert/--tls-key; the caller is named by its
common name). A caller sees and watches the builds it started or joined;
an admin token sees every caller's. Without authentication the server
listens on loopback or a unix socket (--listen unix:///PATH, mode 0600)
only, and every caller is the same one. Tokens in plain text on a
non-loopback address are refused unless --tls-terminated-by-proxy says a
proxy or service mesh terminates TLS in front of the server.

Health is NOT_SERVING while no BuildKit daemon answers (checked every 5s;
builds meanwhile fail as unavailable, and are not remembered) and SERVING
once one does: a server started before its BuildKit uses it as soon as it
answers.

On SIGTERM or SIGINT health turns NOT_SERVING, new builds are refused
(a caller of a tag that is still building joins it), and running builds
finish (within --shutdown-grace, then they are stopped) and release their
leases before Redis and BuildKit are closed and the process exits.

Several replicas behind one load balancer share one build per tag through
--redis-url: a lease per tag (renewed while the build runs), the build's
events in a Redis stream that callers on other replicas follow, and failed
builds remembered for --failure-ttl. A replica that dies loses its lease
after --lease-ttl and a waiting replica builds. A build whose lease cannot
be renewed (Redis away for about --lease-ttl) or is confirmed lost right
before its push stops without pushing; its callers get UNAVAILABLE and
nothing is remembered. It is an efficiency lock: the worst case of a lost
lease is one duplicate build of an identical image, never a wrong image. When Redis is unreachable builds go on, coordinated in
process (metric ispec_coordination_degraded = 1; health stays SERVING).

Several comma-separated --buildkit-addr make a pool: a build goes to the
daemon ranked first for its base image and apt packages (rendezvous
hashing), so related specs share a warm cache; a daemon that fails its
health check is skipped.

Settings come from defaults < config file < ISPEC_* environment < flags.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd)
			if err != nil {
				return err
			}
			return serve(cmd.Context(), cfg, cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.String("listen", "127.0.0.1:8080", "gRPC address HOST:PORT, or unix:///PATH for a unix socket only this user may use (mode 0600)")
	fl.String("metrics-listen", "127.0.0.1:9090", "Prometheus /metrics address HOST:PORT (empty: off)")
	fl.String("buildkit-addr", "", "BuildKit address, or several comma-separated for a pool (env ISPEC_BUILDKIT_ADDR or BUILDKIT_HOST)")
	addBuildkitTLSFlags(fl)
	fl.Int("max-builds-per-daemon", 0, "builds at once on each BuildKit daemon of a pool (0: no limit)")
	fl.String("redis-url", "", "Redis shared by replicas for build leases, joins and failures: redis://[user:pass@]host:port[/db] (env ISPEC_REDIS_URL); empty: this process only")
	fl.Duration("lease-ttl", 30*time.Second, "how long a tag's build lease lives without renewal (renewed every third of it)")
	fl.String("token-file", "", "file of bearer tokens callers may use, one per line: TOKEN, NAME:TOKEN or NAME:TOKEN:admin; read again when it changes")
	fl.Bool("tls-terminated-by-proxy", false, "serve plain gRPC with tokens on a non-loopback address because a proxy or service mesh in front of the server terminates TLS")
	fl.StringSlice("allowed-registries", nil, "registries the server may push to (host[:port][/path], comma-separated); default any")
	fl.StringSlice("allowed-lookup-registries", nil, "registries the server may look images up in and pull base images from, besides --allowed-registries (host[:port][/path], comma-separated); default any")
	fl.Int("max-builds", 4, "builds at once")
	fl.Int("max-queue", 64, "builds waiting for a slot before calls get RESOURCE_EXHAUSTED")
	fl.Duration("build-timeout", time.Hour, "longest a build may run")
	fl.Duration("failure-ttl", time.Minute, "how long a failed build step or an invalid spec is remembered for callers of the same tag (outages, timeouts and cancellations never are)")
	fl.Duration("shutdown-grace", 10*time.Minute, "how long running builds may finish after SIGTERM")
	fl.String("tls-cert", "", "server certificate (PEM)")
	fl.String("tls-key", "", "server key (PEM)")
	fl.String("client-ca", "", "CA whose client certificates authenticate callers (mTLS)")
	fl.String("log-format", "text", "log format: text or json")
	fl.String("upload-dir", "", "folder under which the server keeps its blob store and the uploads of builds under way (default the system's temporary folder)")
	fl.String("upload-cache-size", "4GiB", "most bytes of uploaded file contents kept for later builds (least recently used removed first)")
	fl.String("upload-in-flight", "1GiB", "most bytes of file contents received at once; more uploads wait")
	fl.String("cache-registry", "", "registry (host[:port][/path]) for BuildKit's cache instead of each image's (env ISPEC_CACHE_REGISTRY)")
	fl.Bool("registry-cache", true, "import and export BuildKit's cache in the registry (env ISPEC_REGISTRY_CACHE)")
	fl.String("pip-netrc", "", "netrc file with private package index credentials for pip (env ISPEC_PIP_NETRC)")
	fl.StringSlice("insecure-registries", nil, "registries reached over plain HTTP besides loopback ones (env ISPEC_INSECURE_REGISTRIES)")
	return cmd
}

func serve(ctx context.Context, cfg *config, stderr io.Writer) error {
	sc := cfg.Serve
	log, err := newLogger(sc.LogFormat, stderr)
	if err != nil {
		return err
	}
	creds, err := serverTLS(sc)
	if err != nil {
		return err
	}
	var aopts []server.AuthOption
	if cfg.TokenFile != "" {
		tf, err := server.OpenTokenFile(cfg.TokenFile)
		if err != nil {
			return usageError{err}
		}
		aopts = append(aopts, server.WithTokenFile(tf))
	}
	if sc.ClientCA != "" {
		aopts = append(aopts, server.WithClientCertificates())
	}
	authn, err := server.NewAuth(append(aopts, server.WithAuthLogger(log))...)
	if err != nil {
		return err
	}
	// Who can reach the server is decided from the address it bound, not
	// from how --listen spells it.
	lis, err := server.Listen(sc.Listen)
	if err != nil {
		return usageError{fmt.Errorf("listen: %w", err)}
	}
	defer lis.Close()
	local := netaddr.Local(lis.Addr())
	switch {
	case !authn.Enabled() && !local:
		return usageError{fmt.Errorf("listen %s (%s): a non-loopback address needs authentication: set --token-file or --client-ca", sc.Listen, lis.Addr())}
	case authn.UsesTokens() && creds == nil && !local && !sc.TLSTerminatedByProxy:
		return usageError{fmt.Errorf("listen %s (%s): bearer tokens would cross the network in plain text: serve TLS (--tls-cert and --tls-key), "+
			"or set --tls-terminated-by-proxy when a proxy or service mesh in front of the server terminates TLS", sc.Listen, lis.Addr())}
	}

	// Builds run under their own context: SIGTERM drains, it does not
	// cancel; only the end of the grace period does.
	buildCtx, stopBuilds := context.WithCancel(context.Background())
	defer stopBuilds()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	p, err := newServePipeline(buildCtx, cfg, stderr, log, reg)
	if err != nil {
		return err
	}
	defer p.close()
	sopts := []server.Option{server.WithSpecOptions(cfg.specOptions()), server.WithAllowedRegistries(sc.AllowedRegistries...),
		server.WithAllowedLookupRegistries(sc.AllowedLookupRegistries...), server.WithLogger(log), server.WithRegisterer(reg), server.WithUploadDir(sc.UploadDir)}
	if sc.UploadCacheSize > 0 {
		sopts = append(sopts, server.WithUploadCacheSize(sc.UploadCacheSize))
	}
	if sc.UploadInFlight > 0 {
		sopts = append(sopts, server.WithUploadInFlight(sc.UploadInFlight))
	}
	srv, err := server.New(p.Pipeline, p.lookup, sopts...)
	if err != nil {
		return usageError{err}
	}
	defer srv.Close()
	gs, hs, err := srv.GRPC(authn, reg, creds)
	if err != nil {
		return err
	}
	// Health follows BuildKit: NOT_SERVING until a daemon answers, and
	// while none does.
	setHealth(hs, grpc_health_v1.HealthCheckResponse_NOT_SERVING)
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	go p.buildkit.Watch(watchCtx, buildkitCheckEvery, func(err error) {
		if err != nil {
			log.Warn("buildkit does not answer: health NOT_SERVING until it does; builds fail as unavailable meanwhile", "error", err)
			setHealth(hs, grpc_health_v1.HealthCheckResponse_NOT_SERVING)
			return
		}
		log.Info("buildkit answers: health SERVING")
		setHealth(hs, grpc_health_v1.HealthCheckResponse_SERVING)
	})

	if sc.MetricsListen != "" {
		ml, err := net.Listen("tcp", sc.MetricsListen)
		if err != nil {
			return usageError{fmt.Errorf("metrics-listen: %w", err)}
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		hsrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go hsrv.Serve(ml)
		defer hsrv.Close()
	}
	if !authn.Enabled() {
		log.Warn("no authentication configured: listening on loopback or a unix socket only; every caller is the same one and sees every build", "listen", lis.Addr().String())
	}
	log.Info("serving", "listen", lis.Addr().String(), "tls", creds != nil, "tls_terminated_by_proxy", sc.TLSTerminatedByProxy, "metrics", sc.MetricsListen, "buildkit", cfg.BuildkitAddr, "redis", sc.RedisURL != "", "lease_ttl", sc.LeaseTTL,
		"max_builds", sc.MaxBuilds, "max_queue", sc.MaxQueue, "allowed_registries", sc.AllowedRegistries,
		"allowed_lookup_registries", sc.AllowedLookupRegistries)
	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()

	select {
	case err := <-served:
		return fmt.Errorf("serving: %w", err)
	case <-ctx.Done():
	}
	srv.Drain()
	hs.Shutdown()
	// Logged once new builds are refused (tests wait for this line).
	log.Info("shutting down: no new builds; running builds finish", "grace", sc.ShutdownGrace)
	deadline := time.After(sc.ShutdownGrace)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
drain:
	for !srv.Idle() {
		select {
		case <-deadline:
			log.Warn("grace period over: stopping running builds")
			stopBuilds()
			break drain
		case <-tick.C:
		}
	}
	// Stopped builds release their leases and write their final records
	// before Redis and BuildKit are closed (deferred above).
	settled := time.After(30 * time.Second)
settle:
	for !srv.Idle() {
		select {
		case <-settled:
			log.Warn("builds still stopping after 30s: closing Redis and BuildKit under them (their leases expire)")
			break settle
		case <-tick.C:
		}
	}
	stopped := make(chan struct{})
	go func() { gs.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		gs.Stop()
	}
	log.Info("stopped")
	return nil
}

// buildkitCheckEvery is how often the server checks that a BuildKit
// daemon answers, for its health.
const buildkitCheckEvery = 5 * time.Second

// setHealth sets the server's health, overall and of ImageService (a
// no-op once the health server is shut down).
func setHealth(hs *health.Server, st grpc_health_v1.HealthCheckResponse_ServingStatus) {
	hs.SetServingStatus("", st)
	hs.SetServingStatus(apiv1.ImageService_ServiceDesc.ServiceName, st)
}

// servePipeline is the server's pipeline: the local index in front of the
// registry, a lock per tag (in process, or a Redis lease shared by
// replicas), bounded builds, on one BuildKit daemon or a pool.
type servePipeline struct {
	*ensure.Pipeline
	lookup   ensure.Lookup
	buildkit *pool.Pool
	closers  []func() error
}

func newServePipeline(ctx context.Context, cfg *config, stderr io.Writer, log *slog.Logger, reg prometheus.Registerer) (*servePipeline, error) {
	sc := cfg.Serve
	remote, err := newRemote(cfg)
	if err != nil {
		return nil, err
	}
	msgs := newMessages(stderr, "")
	checker, _ := withIndex(cfg, remote, false, msgs)
	sp := &servePipeline{lookup: checker}
	b, err := newBuildkit(cfg.BuildkitAddr, cfg.BuildkitTLS, reg, pool.WithMaxPerDaemon(sc.MaxPerDaemon))
	if err != nil {
		return nil, err
	}
	sp.buildkit = b
	sp.closers = append(sp.closers, b.Close)
	opts, err := commonOptions(ctx, cfg, checker, b, cfg.cacheMode(false), msgs)
	if err != nil {
		sp.close()
		return nil, err
	}
	opts = append(opts,
		ensure.WithMaxBuilds(sc.MaxBuilds), ensure.WithMaxQueue(sc.MaxQueue),
		ensure.WithBuildTimeout(sc.BuildTimeout), ensure.WithFailureTTL(sc.FailureTTL), ensure.WithLogger(log))
	var rc *coord.Redis
	if sc.RedisURL != "" {
		streamTTL := time.Hour
		if sc.FailureTTL > streamTTL {
			streamTTL = sc.FailureTTL
		}
		// go-redis's own messages go to the structured log, once per
		// state change.
		redis.SetLogger(coord.NewRedisLogger(log))
		rc, err = coord.New(sc.RedisURL, coord.WithLeaseTTL(sc.LeaseTTL), coord.WithStreamTTL(streamTTL), coord.WithLogger(log))
		if err != nil {
			return nil, usageError{fmt.Errorf("redis-url: %w", errors.Unwrap(err))}
		}
		sp.closers = append(sp.closers, rc.Close)
		opts = append(opts, ensure.WithLocker(rc), ensure.WithExchange(rc))
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ispec_coordination_degraded", Help: "1 while Redis cannot be reached and builds are coordinated in this process only.",
	}, func() float64 {
		if rc != nil && rc.Degraded() {
			return 1
		}
		return 0
	}))
	p, err := ensure.New(opts...)
	if err != nil {
		sp.close()
		return nil, usageError{err}
	}
	sp.Pipeline = p
	return sp, nil
}

func (p *servePipeline) close() {
	for _, c := range p.closers {
		c()
	}
}

// splitComma splits a comma-separated list, trimming spaces.
func splitComma(s string) []string {
	parts := strings.Split(s, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

// serverTLS returns the server's transport credentials; nil for plain
// text.
func serverTLS(sc serveConfig) (credentials.TransportCredentials, error) {
	if sc.TLSCert == "" && sc.TLSKey == "" {
		if sc.ClientCA != "" {
			return nil, usageError{errors.New("client-ca needs tls-cert and tls-key")}
		}
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(sc.TLSCert, sc.TLSKey)
	if err != nil {
		return nil, usageError{fmt.Errorf("tls-cert/tls-key: %w", err)}
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if sc.ClientCA != "" {
		pem, err := os.ReadFile(sc.ClientCA)
		if err != nil {
			return nil, usageError{fmt.Errorf("client-ca: %w", err)}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, usageError{fmt.Errorf("client-ca %s: no PEM certificate", sc.ClientCA)}
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return credentials.NewTLS(tc), nil
}

func newLogger(format string, w io.Writer) (*slog.Logger, error) {
	switch format {
	case "", "text":
		return slog.New(slog.NewTextHandler(w, nil)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, nil)), nil
	}
	return nil, usageError{fmt.Errorf("log-format %q: expected text or json", format)}
}

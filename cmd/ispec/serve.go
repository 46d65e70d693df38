package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/ispec-dev/ispec/internal/assemble"
	"github.com/ispec-dev/ispec/locker"
	"github.com/ispec-dev/ispec/server"
)

// serveLong is the help of `ispec serve`.
const serveLong = `Serve ispec.v1.ImageService over gRPC: other tools resolve, look up and
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

Settings come from defaults < config file < ISPEC_* environment < flags.`

func newServeCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the build service (gRPC ispec.v1.ImageService)",
		Long:  serveLong,
		Args:  exactArgs(0),
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
	fl.Int("max-builds", 4, "builds at once (and as many Lock resolutions)")
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

// serve runs the server cfg describes until ctx ends.
func serve(ctx context.Context, cfg *config, stderr io.Writer) error {
	log, err := newLogger(cfg.Serve.LogFormat, stderr)
	if err != nil {
		return err
	}
	err = server.Run(ctx, cfg.serverConfig(log, stderr))
	if errors.Is(err, server.ErrConfig) {
		return usageError{err}
	}
	return err
}

// serverConfig is the server's configuration: where it listens, who may
// call, how it drains, and the pipeline behind it.
func (c *config) serverConfig(log *slog.Logger, stderr io.Writer) server.Config {
	sc := c.Serve
	sopts := []server.Option{server.WithSpecOptions(c.specOptions()), server.WithAllowedRegistries(sc.AllowedRegistries...),
		server.WithAllowedLookupRegistries(sc.AllowedLookupRegistries...), server.WithUploadDir(sc.UploadDir)}
	if sc.MaxBuilds > 0 {
		// Lock resolutions run on BuildKit as builds do: as many at once.
		sopts = append(sopts, server.WithMaxLocks(sc.MaxBuilds))
	}
	if sc.UploadCacheSize > 0 {
		sopts = append(sopts, server.WithUploadCacheSize(sc.UploadCacheSize))
	}
	if sc.UploadInFlight > 0 {
		sopts = append(sopts, server.WithUploadInFlight(sc.UploadInFlight))
	}
	return server.Config{
		Listen: sc.Listen, MetricsListen: sc.MetricsListen,
		TLS:       server.TLSFiles{Cert: sc.TLSCert, Key: sc.TLSKey, ClientCA: sc.ClientCA},
		TokenFile: c.TokenFile, TLSTerminatedByProxy: sc.TLSTerminatedByProxy,
		ShutdownGrace: sc.ShutdownGrace, Logger: log, Options: sopts,
		LogAttrs: []any{"buildkit", c.BuildkitAddr, "redis", sc.RedisURL != "", "lease_ttl", sc.LeaseTTL,
			"max_builds", sc.MaxBuilds, "max_queue", sc.MaxQueue, "allowed_registries", sc.AllowedRegistries,
			"allowed_lookup_registries", sc.AllowedLookupRegistries},
		Backend: func(ctx context.Context, reg prometheus.Registerer) (*server.Backend, error) {
			return c.serveBackend(ctx, reg, log, stderr)
		},
	}
}

// serveBackend assembles the server's pipeline: the local index in front
// of the registry, a lock per tag (in process, or a Redis lease shared by
// replicas), bounded builds, on one BuildKit daemon or a pool.
func (c *config) serveBackend(ctx context.Context, reg prometheus.Registerer, log *slog.Logger, stderr io.Writer) (*server.Backend, error) {
	sc := c.Serve
	s := c.pipelineSettings(false, false, newMessages(stderr, ""))
	s.Serve = &assemble.ServeSettings{
		MaxPerDaemon: sc.MaxPerDaemon, MaxBuilds: sc.MaxBuilds, MaxQueue: sc.MaxQueue,
		BuildTimeout: sc.BuildTimeout, FailureTTL: sc.FailureTTL,
		RedisURL: sc.RedisURL, LeaseTTL: sc.LeaseTTL, Logger: log, Registerer: reg,
	}
	p, err := assemble.New(ctx, s)
	if err != nil {
		return nil, usageError{err}
	}
	// Locks resolve with the server's own registry client, BuildKit pool
	// and pip netrc: never a caller's credentials.
	lk, err := locker.New(p.Lookup.Remote, locker.WithPython(p.Buildkit), locker.WithPipNetrc(p.PipNetrc))
	if err != nil {
		p.Close()
		return nil, err
	}
	return &server.Backend{Pipeline: p.Pipeline, Lookup: p.Lookup.Checker, Locker: lk, Health: p.Buildkit.Watch, Close: p.Close}, nil
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

// Package assemble puts the build-once pipeline together from plain
// settings, the same way for the CLI and the server: the local index in
// front of the registry, BuildKit (one daemon or a pool, connected on
// first use), a lock per tag (a file in the cache dir, or a Redis lease
// shared by replicas), the index as recorder, the pip netrc.
//
// It is the one place that knows every adapter (cache, pool, coord,
// Prometheus); ensure itself imports none of them. It is internal: its
// settings mirror the CLI's, not a stable API.
package assemble

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ispec-dev/ispec/builder"
	"github.com/ispec-dev/ispec/ensure"
	"github.com/ispec-dev/ispec/pool"
)

// Settings are what a pipeline is assembled from. Every error of New
// names the setting at fault (as the CLI's flag).
type Settings struct {
	Lookup LookupSettings
	// BuildkitAddrs are BuildKit addresses, comma-separated: one daemon,
	// or a pool. Empty: builder.DefaultAddr.
	BuildkitAddrs string
	BuildkitTLS   builder.TLS
	// Version is ispec's, sent to BuildKit.
	Version string
	// CacheMode and CacheRegistry say where BuildKit's cache goes.
	CacheMode     builder.CacheMode
	CacheRegistry string
	// PipNetrc is a netrc file given to pip as a secret; read by New.
	PipNetrc string
	// Serve, when set, makes the server's pipeline; nil: the CLI's, with a
	// file lock per tag in Lookup.CacheDir.
	Serve *ServeSettings
}

// ServeSettings are the server's: bounded builds, remembered failures,
// Redis shared by replicas, metrics.
type ServeSettings struct {
	MaxPerDaemon, MaxBuilds, MaxQueue int
	BuildTimeout, FailureTTL          time.Duration
	// RedisURL is the Redis replicas share leases, events and failures
	// through (LeaseTTL each lease); empty: this process only.
	RedisURL string
	LeaseTTL time.Duration
	// Logger receives the pipeline's and Redis's messages.
	Logger *slog.Logger
	// Registerer receives the pool's and coordination's metrics.
	Registerer prometheus.Registerer
}

// Pipeline is an assembled pipeline with what it was made of.
type Pipeline struct {
	*ensure.Pipeline
	// Lookup is the pipeline's lookup (the index in front of the
	// registry).
	Lookup *Lookup
	// Buildkit is the connection manager of the BuildKit daemons.
	Buildkit *pool.Pool
	// PipNetrc is the netrc given to pip (Settings.PipNetrc's content);
	// nil: none.
	PipNetrc []byte
	closers  []func() error
}

// New assembles a pipeline; builds run under ctx.
func New(ctx context.Context, s Settings) (*Pipeline, error) {
	if s.Serve == nil && s.Lookup.CacheDir == "" {
		return nil, errors.New("no cache dir for build locks: set --cache-dir or ISPEC_CACHE_DIR")
	}
	lk, err := NewLookup(s.Lookup)
	if err != nil {
		return nil, err
	}
	p := &Pipeline{Lookup: lk}
	if s.PipNetrc != "" {
		// Read now, so that a wrong path fails before any work; the
		// contents never reach an error message.
		if p.PipNetrc, err = os.ReadFile(s.PipNetrc); err != nil {
			return nil, fmt.Errorf("pip-netrc: reading %s: %w", s.PipNetrc, errors.Unwrap(err))
		}
	}
	if p.Buildkit, err = s.buildkit(); err != nil {
		return nil, err
	}
	p.closers = append(p.closers, p.Buildkit.Close)
	opts, err := s.options(lk, p.Buildkit, p.PipNetrc)
	if err == nil {
		var more []ensure.Option
		more, err = p.lockOptions(s)
		opts = append(opts, more...)
	}
	if err == nil {
		p.Pipeline, err = ensure.New(append(opts, ensure.WithContext(ctx))...)
	}
	if err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

// Close closes BuildKit's idle connections and Redis.
func (p *Pipeline) Close() {
	for _, c := range p.closers {
		c()
	}
}

// buildkit returns the connection manager of the daemons: it connects
// when something must be built, and again after a failure.
func (s Settings) buildkit() (*pool.Pool, error) {
	var list []string
	for _, a := range strings.Split(s.BuildkitAddrs, ",") {
		if a = strings.TrimSpace(a); a != "" {
			list = append(list, a)
		}
	}
	if len(list) == 0 {
		list = []string{builder.DefaultAddr}
	}
	var opts []pool.Option
	if len(list) == 1 {
		// One daemon: the dial timeout a single builder has.
		opts = append(opts, pool.WithHealthTimeout(builder.DefaultDialTimeout))
	}
	if s.Serve != nil {
		opts = append(opts, pool.WithMaxPerDaemon(s.Serve.MaxPerDaemon))
		if s.Serve.Registerer != nil {
			opts = append(opts, pool.WithRegisterer(s.Serve.Registerer))
		}
	}
	pl, err := pool.New(list, builder.Options{Version: s.Version, TLS: s.BuildkitTLS}, opts...)
	if err != nil {
		return nil, fmt.Errorf("buildkit-addr: %w", err)
	}
	return pl, nil
}

// options are the options the CLI and the server share: the lookup, the
// builder, the registry cache, the local index as recorder, the netrc.
func (s Settings) options(lk *Lookup, b ensure.Builder, netrc []byte) ([]ensure.Option, error) {
	opts := []ensure.Option{
		ensure.WithLookup(lk.Checker),
		ensure.WithBuilder(b),
		ensure.WithRegistryCache(s.CacheMode, s.CacheRegistry),
	}
	if r, ok := lk.recorder(); ok {
		opts = append(opts, ensure.WithRecorder(r))
	}
	if netrc != nil {
		opts = append(opts, ensure.WithPipNetrc(netrc))
	}
	if sv := s.Serve; sv != nil {
		opts = append(opts,
			ensure.WithMaxBuilds(sv.MaxBuilds), ensure.WithMaxQueue(sv.MaxQueue),
			ensure.WithBuildTimeout(sv.BuildTimeout), ensure.WithFailureTTL(sv.FailureTTL))
		if sv.Logger != nil {
			opts = append(opts, ensure.WithLogger(sv.Logger))
		}
	}
	return opts, nil
}

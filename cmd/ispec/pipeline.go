package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ispec-dev/ispec/builder"
	"github.com/ispec-dev/ispec/cache"
	"github.com/ispec-dev/ispec/ensure"
	"github.com/ispec-dev/ispec/pool"
	"github.com/ispec-dev/ispec/spec"
)

// cliPipeline is the build-once pipeline as the CLI runs it: the local
// index in front of the registry, a file lock per tag in the cache dir,
// and BuildKit connected only when something must be built.
type cliPipeline struct {
	*ensure.Pipeline
	b       *pool.Pool
	checker cache.Checker
}

// newPipeline makes the pipeline of one command. Builds run under ctx, so
// an interrupt stops them.
func newPipeline(ctx context.Context, cfg *config, f buildFlags, msgs *messages) (*cliPipeline, error) {
	if cfg.CacheDir == "" {
		return nil, usageError{fmt.Errorf("no cache dir for build locks: set --cache-dir or ISPEC_CACHE_DIR")}
	}
	remote, err := newRemote(cfg)
	if err != nil {
		return nil, err
	}
	checker, _ := withIndex(cfg, remote, f.verify, msgs)
	lb, err := newBuildkit(cfg.BuildkitAddr, cfg.BuildkitTLS, nil)
	if err != nil {
		return nil, err
	}
	opts, err := commonOptions(ctx, cfg, checker, lb, cfg.cacheMode(f.noRegistryCache), msgs)
	if err != nil {
		return nil, err
	}
	opts = append(opts, ensure.WithLocker(ensure.FileLocker{Dir: cfg.CacheDir}))
	p, err := ensure.New(opts...)
	if err != nil {
		return nil, err
	}
	return &cliPipeline{Pipeline: p, b: lb, checker: checker}, nil
}

func (p *cliPipeline) close() { p.b.Close() }

// newBuildkit returns the connection manager of the BuildKit daemons at
// addrs (comma-separated; one, or a pool) over tls, with opts: it connects when
// something must be built, and again after a failure.
func newBuildkit(addrs string, tls builder.TLS, reg prometheus.Registerer, opts ...pool.Option) (*pool.Pool, error) {
	list := nonEmpty(splitComma(addrs)...)
	if len(list) == 0 {
		list = []string{builder.DefaultAddr}
	}
	if len(list) == 1 {
		// One daemon: the dial timeout a single builder has.
		opts = append([]pool.Option{pool.WithHealthTimeout(builder.DefaultDialTimeout)}, opts...)
	}
	if reg != nil {
		opts = append(opts, pool.WithRegisterer(reg))
	}
	pl, err := pool.New(list, builder.Options{Version: ispecVersion(), TLS: tls}, opts...)
	if err != nil {
		return nil, usageError{fmt.Errorf("buildkit-addr: %w", err)}
	}
	return pl, nil
}

// commonOptions are the pipeline options the CLI and the server share:
// the lookup, the builder (BuildKit connected on first use), the context builds run
// under, the registry cache, the local index as recorder, the pip netrc.
func commonOptions(ctx context.Context, cfg *config, checker cache.Checker, b ensure.Builder, cache builder.CacheMode, msgs *messages) ([]ensure.Option, error) {
	opts := []ensure.Option{
		ensure.WithLookup(checker),
		ensure.WithBuilder(b),
		ensure.WithContext(ctx),
		ensure.WithRegistryCache(cache, cfg.CacheRegistry),
	}
	if r, ok := recorderOf(checker, msgs); ok {
		opts = append(opts, ensure.WithRecorder(r))
	}
	if cfg.PipNetrc != "" {
		// Read now, so that a wrong path fails before any work; the
		// contents never reach an error message.
		netrc, err := os.ReadFile(cfg.PipNetrc)
		if err != nil {
			return nil, usageError{fmt.Errorf("pip-netrc: reading %s: %w", cfg.PipNetrc, errors.Unwrap(err))}
		}
		opts = append(opts, ensure.WithPipNetrc(netrc))
	}
	return opts, nil
}

// prepare readies the lookups of many images and their parents at once:
// the local index read in one go, one registry handshake per registry
// rather than one per repository.
func (p *cliPipeline) prepare(ctx context.Context, imgs []*spec.Image) {
	pr, ok := p.checker.(cache.Preparer)
	if !ok {
		return
	}
	var refs []name.Tag
	seen := map[*spec.Image]bool{}
	for _, img := range imgs {
		for ; img != nil && !seen[img]; img = img.Parent {
			seen[img] = true
			if t, err := ensure.Tag(img); err == nil {
				refs = append(refs, t)
			}
		}
	}
	if len(refs) > 1 {
		pr.Prepare(ctx, refs)
	}
}

// recorderOf returns the recorder of a lookup backed by the local index.
func recorderOf(checker cache.Checker, msgs *messages) (ensure.Recorder, bool) {
	cached, ok := checker.(*cache.Cached)
	if !ok {
		return nil, false
	}
	return recordWarner{cached, msgs}, true
}

// recordWarner records built images in the local index, warning when it
// cannot (the next lookup then asks the registry).
type recordWarner struct {
	c    *cache.Cached
	msgs *messages
}

func (r recordWarner) Record(ref name.Tag, d v1.Hash) error {
	if err := r.c.Record(ref, d); err != nil {
		r.msgs.warn("local index: %v", err)
		return err
	}
	return nil
}

package main

import (
	"context"

	"github.com/ispec-dev/ispec/builder"
	"github.com/ispec-dev/ispec/ensure"
	"github.com/ispec-dev/ispec/internal/assemble"
	"github.com/ispec-dev/ispec/spec"
)

// ensurer makes images exist: the local pipeline, or a server's.
type ensurer interface {
	Ensure(ctx context.Context, img *spec.Image, req ensure.Request) (*ensure.Result, error)
	// Export builds img into the file out names instead of pushing it.
	Export(ctx context.Context, img *spec.Image, out *builder.Output, req ensure.Request) (*ensure.Result, error)
	// Prepare readies the lookups of imgs and their parents at once.
	Prepare(ctx context.Context, imgs []*spec.Image)
	close()
}

// localPipeline is the build-once pipeline as the CLI runs it: the local
// index in front of the registry, a file lock per tag in the cache dir,
// and BuildKit connected only when something must be built.
type localPipeline struct{ *assemble.Pipeline }

func (p localPipeline) Prepare(ctx context.Context, imgs []*spec.Image) {
	p.Lookup.Prepare(ctx, imgs)
}

func (p localPipeline) close() { p.Close() }

// newPipeline makes the pipeline of one command. Builds run under ctx, so
// an interrupt stops them.
func newPipeline(ctx context.Context, cfg *config, f buildFlags, msgs *messages) (ensurer, error) {
	p, err := assemble.New(ctx, cfg.pipelineSettings(f.noRegistryCache, f.verify, msgs))
	if err != nil {
		return nil, usageError{err}
	}
	return localPipeline{p}, nil
}

// pipelineSettings are the settings of the pipeline cfg asks for (the
// CLI's; the server adds its own).
func (c *config) pipelineSettings(noRegistryCache, verify bool, msgs *messages) assemble.Settings {
	return assemble.Settings{
		Lookup:        c.lookupSettings(verify, msgs),
		BuildkitAddrs: c.BuildkitAddr,
		BuildkitTLS:   c.BuildkitTLS,
		Version:       ispecVersion(),
		CacheMode:     c.cacheMode(noRegistryCache),
		CacheRegistry: c.CacheRegistry,
		PipNetrc:      c.PipNetrc,
	}
}

// lookupSettings are the settings of the lookup cfg asks for: the local
// index in the cache dir in front of the registry.
func (c *config) lookupSettings(verify bool, msgs *messages) assemble.LookupSettings {
	return assemble.LookupSettings{
		InsecureRegistries: c.InsecureRegistries,
		UserAgent:          "ispec/" + ispecVersion(),
		CacheDir:           c.CacheDir,
		Verify:             verify,
		Warn:               msgs.warn,
	}
}

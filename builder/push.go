package builder

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/moby/buildkit/client"
	gateway "github.com/moby/buildkit/frontend/gateway/client"
	digest "github.com/opencontainers/go-digest"
)

// PushRetryStep is the progress vertex that says a push is tried again.
const PushRetryStep = "[ispec] push again"

// pushAttempts is how many times a build tries to push an image whose
// manifest the registry refused for a blob it did not know.
const pushAttempts = 3

// pushRetryDelay is the wait before the second attempt; the n-th waits n
// times as long.
const pushRetryDelay = 500 * time.Millisecond

// run runs one BuildKit build of fn with opt, feeding its statuses to tr
// and, through show, to prog.
func (b *Builder) run(ctx context.Context, opt client.SolveOpt, fn gateway.BuildFunc, tr *tracker, prog *Progress, show func(*client.SolveStatus) *client.SolveStatus) (*client.SolveResponse, error) {
	ch := make(chan *client.SolveStatus)
	fed := make(chan struct{})
	go func() {
		defer close(fed)
		for s := range ch {
			tr.add(s)
			if s = show(s); s != nil {
				prog.Publish(s)
			}
		}
	}()
	resp, err := b.c.Build(ctx, opt, "ispec", fn, ch)
	<-fed
	return resp, err
}

// exportCacheAfterPush exports the registry cache of a build that pushed
// its image, in a solve of its own that finds every step in the daemon's
// cache and pushes no image.
//
// The repository's cache reference (CacheRefs.Repo) is a tag of the
// image's own repository. In one solve BuildKit pushes the image and
// exports the cache at the same time, so both write the same layers to
// that repository at once; a distribution registry (v2) rewrites a
// blob's link in the repository in place on every write, and a manifest
// PUT that checks the blob meanwhile reads no link and is refused with
// MANIFEST_BLOB_UNKNOWN. After the push, the export finds the layers in
// the repository and writes only what the image lacks.
//
// Its progress shows the cache export alone: the steps it finds cached
// were shown by the build. A cache export never fails a build: its errors
// end up in tr, which Result.Warnings sums up.
func (b *Builder) exportCacheAfterPush(ctx context.Context, opt client.SolveOpt, solve gateway.BuildFunc, opts BuildOptions, tr *tracker, prog *Progress) {
	opt.Exports = nil
	opt.CacheExports = cacheExports(opts.CacheExports)
	if _, err := b.run(ctx, opt, solve, tr, prog, cacheExportOnly()); err != nil && ctx.Err() == nil {
		tr.exportFailed(err)
	}
}

// blobUnknownPush tells a push that the registry refused because the
// manifest named a blob it did not know (distribution's
// MANIFEST_BLOB_UNKNOWN, "manifest blob unknown"), which a second push of
// the same built image can get past.
func blobUnknownPush(err error) bool {
	var pe *PushError
	if !errors.As(err, &pe) || pe.Err == nil {
		return false
	}
	msg := strings.ToLower(pe.Err.Error())
	return strings.Contains(msg, "manifest blob unknown") || strings.Contains(msg, "manifest_blob_unknown") ||
		strings.Contains(msg, "blob unknown to registry")
}

// cacheExportOnly returns a filter that keeps of each status the
// registry cache export's vertices, statuses and logs, or nil when none
// is left. It is used by one goroutine.
func cacheExportOnly() func(*client.SolveStatus) *client.SolveStatus {
	keep := map[digest.Digest]bool{}
	return func(s *client.SolveStatus) *client.SolveStatus {
		out := &client.SolveStatus{}
		for _, v := range s.Vertexes {
			if v.Name == cacheExportVertexName {
				keep[v.Digest] = true
				out.Vertexes = append(out.Vertexes, v)
			}
		}
		for _, st := range s.Statuses {
			if keep[st.Vertex] {
				out.Statuses = append(out.Statuses, st)
			}
		}
		for _, l := range s.Logs {
			if keep[l.Vertex] {
				out.Logs = append(out.Logs, l)
			}
		}
		if len(out.Vertexes)+len(out.Statuses)+len(out.Logs) == 0 {
			return nil
		}
		return out
	}
}

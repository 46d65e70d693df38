package builder

import (
	"fmt"
	"time"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/buildkit/util/apicaps"
	digest "github.com/opencontainers/go-digest"
)

// LinearFallbackStep is the progress vertex that tells a build fell back
// to the linear graph because the daemon lacks merge-op support.
const LinearFallbackStep = "[ispec] merge unsupported: linear graph"

// mergeSupported returns nil when a daemon with the LLB capabilities caps
// runs merge and diff operations (BuildKit 0.10 and later), else why not.
func mergeSupported(caps apicaps.CapSet) error {
	for _, id := range []apicaps.CapID{pb.CapMergeOp, pb.CapDiffOp} {
		if err := caps.Supports(id); err != nil {
			return fmt.Errorf("capability %s: %w", id, err)
		}
	}
	return nil
}

// publishNotice shows a message in the build's progress as a finished
// vertex named name with one log line, the way BuildKit shows a step, so
// that every display (plain, tty, JSON) carries it.
func publishNotice(prog *Progress, name, msg string) {
	now := time.Now()
	d := digest.FromString("ispec-notice\x00" + name)
	prog.Publish(&client.SolveStatus{
		Vertexes: []*client.Vertex{{Digest: d, Name: name, Started: &now, Completed: &now}},
		Logs:     []*client.VertexLog{{Vertex: d, Stream: 2, Data: []byte(msg), Timestamp: now}},
	})
}

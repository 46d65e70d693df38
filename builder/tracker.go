package builder

import (
	"strings"

	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"
)

// tracker follows a progress stream and keeps, per vertex, its name, its
// error and the last lines of its log, to explain a failed build.
type tracker struct {
	vertices map[digest.Digest]*vertexLog
	order    []digest.Digest // in order of first appearance
}

type vertexLog struct {
	name    string
	err     string
	lines   []string // at most LogTailLines complete lines
	partial string   // an unfinished last line
}

func newTracker() *tracker {
	return &tracker{vertices: map[digest.Digest]*vertexLog{}}
}

func (t *tracker) vertex(d digest.Digest) *vertexLog {
	v, ok := t.vertices[d]
	if !ok {
		v = &vertexLog{}
		t.vertices[d] = v
		t.order = append(t.order, d)
	}
	return v
}

func (t *tracker) add(s *client.SolveStatus) {
	for _, v := range s.Vertexes {
		vl := t.vertex(v.Digest)
		if v.Name != "" {
			vl.name = v.Name
		}
		if v.Error != "" {
			vl.err = v.Error
		}
	}
	for _, l := range s.Logs {
		t.vertex(l.Vertex).write(l.Data)
	}
}

func (v *vertexLog) write(b []byte) {
	text := v.partial + strings.ReplaceAll(string(b), "\r\n", "\n")
	parts := strings.Split(text, "\n")
	v.partial = parts[len(parts)-1]
	v.lines = append(v.lines, parts[:len(parts)-1]...)
	if n := len(v.lines); n > LogTailLines {
		v.lines = append([]string(nil), v.lines[n-LogTailLines:]...)
	}
}

// tail returns the last lines of the vertex's log.
func (v *vertexLog) tail() []string {
	lines := append([]string(nil), v.lines...)
	if v.partial != "" {
		lines = append(lines, v.partial)
	}
	if n := len(lines); n > LogTailLines {
		lines = lines[n-LogTailLines:]
	}
	return lines
}

// failed returns the vertex that failed the build: the last one with an
// error that is not a cancellation caused by another failure, nor the
// registry cache's (which never fails a build).
func (t *tracker) failed() *vertexLog {
	var found *vertexLog
	for _, d := range t.order {
		v := t.vertices[d]
		if v.err == "" || strings.Contains(v.err, "context canceled") || isCacheVertex(v.name) {
			continue
		}
		found = v
	}
	return found
}

// exportFailed records err as an error of the registry cache export, for
// a cache export that failed outside BuildKit's own export vertex.
func (t *tracker) exportFailed(err error) {
	v := t.vertex(digest.FromString("ispec-cache-export-after-push"))
	v.name = cacheExportVertexName
	v.err = unwrapGRPC(err).Error()
}

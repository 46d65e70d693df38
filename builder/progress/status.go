// Package progress holds a build's progress as ispec carries it between
// its packages: BuildKit's solve status in types of ispec's own (so that
// a caller that only renders or forwards progress links no BuildKit), and
// the fold that keeps what a late watcher needs. The builder converts
// BuildKit's statuses at its edge; the JSON form matches BuildKit's.
package progress

import (
	"time"

	digest "github.com/opencontainers/go-digest"
)

// Status is one update of a build's progress, as BuildKit's
// client.SolveStatus.
type Status struct {
	Vertexes []*Vertex        `json:"vertexes,omitempty"`
	Statuses []*VertexStatus  `json:"statuses,omitempty"`
	Logs     []*VertexLog     `json:"logs,omitempty"`
	Warnings []*VertexWarning `json:"warnings,omitempty"`
}

// Vertex is one step of the build graph.
type Vertex struct {
	Digest        digest.Digest   `json:"digest,omitempty"`
	Inputs        []digest.Digest `json:"inputs,omitempty"`
	Name          string          `json:"name,omitempty"`
	Started       *time.Time      `json:"started,omitempty"`
	Completed     *time.Time      `json:"completed,omitempty"`
	Cached        bool            `json:"cached,omitempty"`
	Error         string          `json:"error,omitempty"`
	ProgressGroup *Group          `json:"progressGroup,omitempty"`
}

// Group groups vertexes a display shows as one.
type Group struct {
	ID   string `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
	Weak bool   `json:"weak,omitempty"`
}

// VertexStatus is the progress of one task of a step (a pull, a copy).
type VertexStatus struct {
	ID        string        `json:"id"`
	Vertex    digest.Digest `json:"vertex,omitempty"`
	Name      string        `json:"name,omitempty"`
	Total     int64         `json:"total,omitempty"`
	Current   int64         `json:"current"`
	Timestamp time.Time     `json:"timestamp"`
	Started   *time.Time    `json:"started,omitempty"`
	Completed *time.Time    `json:"completed,omitempty"`
}

// VertexLog is output of a step (Stream 1 stdout, 2 stderr).
type VertexLog struct {
	Vertex    digest.Digest `json:"vertex,omitempty"`
	Stream    int           `json:"stream,omitempty"`
	Data      []byte        `json:"data"`
	Timestamp time.Time     `json:"timestamp"`
}

// VertexWarning is a warning BuildKit attached to a step.
type VertexWarning struct {
	Vertex digest.Digest `json:"vertex,omitempty"`
	Level  int           `json:"level,omitempty"`
	Short  []byte        `json:"short,omitempty"`
	Detail [][]byte      `json:"detail,omitempty"`
	URL    string        `json:"url,omitempty"`
}

// Size estimates what keeping s costs, in bytes: its logs' data plus a
// fixed cost per vertex, status, log and warning.
func Size(s *Status) int {
	if s == nil {
		return 0
	}
	n := 64 + 256*len(s.Vertexes) + 128*len(s.Statuses) + 64*len(s.Logs)
	for _, l := range s.Logs {
		n += len(l.Data)
	}
	for _, w := range s.Warnings {
		n += 256 + len(w.Short)
		for _, d := range w.Detail {
			n += len(d)
		}
	}
	return n
}

package builder

import (
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/solver/pb"

	"github.com/ispec-dev/ispec/builder/progress"
)

// DefaultProgressLogLimit is how many bytes of a build's logs a late
// watcher is replayed by default: the last ones, after a line saying how
// many were dropped.
const DefaultProgressLogLimit = 1 << 20

// statusFold is a progress.State as a replay.Folder of statuses.
type statusFold struct{ st *progress.State }

func (f statusFold) Fold(items []*progress.Status) {
	for _, s := range items {
		f.st.Add(s)
	}
}

func (f statusFold) Head() []*progress.Status {
	if s := f.st.Status(); s != nil {
		return []*progress.Status{s}
	}
	return nil
}

func (f statusFold) Size(s *progress.Status) int { return progress.Size(s) }

// StatusOf converts BuildKit's solve status into ispec's; nil for nil.
// Source information and ranges of warnings are left out.
func StatusOf(s *client.SolveStatus) *progress.Status {
	if s == nil {
		return nil
	}
	out := &progress.Status{}
	for _, v := range s.Vertexes {
		pv := &progress.Vertex{Digest: v.Digest, Inputs: v.Inputs, Name: v.Name, Started: v.Started, Completed: v.Completed, Cached: v.Cached, Error: v.Error}
		if g := v.ProgressGroup; g != nil {
			pv.ProgressGroup = &progress.Group{ID: g.Id, Name: g.Name, Weak: g.Weak}
		}
		out.Vertexes = append(out.Vertexes, pv)
	}
	for _, st := range s.Statuses {
		out.Statuses = append(out.Statuses, &progress.VertexStatus{ID: st.ID, Vertex: st.Vertex, Name: st.Name, Total: st.Total, Current: st.Current,
			Timestamp: st.Timestamp, Started: st.Started, Completed: st.Completed})
	}
	for _, l := range s.Logs {
		out.Logs = append(out.Logs, &progress.VertexLog{Vertex: l.Vertex, Stream: l.Stream, Data: l.Data, Timestamp: l.Timestamp})
	}
	for _, w := range s.Warnings {
		out.Warnings = append(out.Warnings, &progress.VertexWarning{Vertex: w.Vertex, Level: w.Level, Short: w.Short, Detail: w.Detail, URL: w.URL})
	}
	return out
}

// SolveStatus converts ispec's status back into BuildKit's, for BuildKit's
// displays; nil for nil.
func SolveStatus(s *progress.Status) *client.SolveStatus {
	if s == nil {
		return nil
	}
	out := &client.SolveStatus{}
	for _, v := range s.Vertexes {
		cv := &client.Vertex{Digest: v.Digest, Inputs: v.Inputs, Name: v.Name, Started: v.Started, Completed: v.Completed, Cached: v.Cached, Error: v.Error}
		if g := v.ProgressGroup; g != nil {
			cv.ProgressGroup = &pb.ProgressGroup{Id: g.ID, Name: g.Name, Weak: g.Weak}
		}
		out.Vertexes = append(out.Vertexes, cv)
	}
	for _, st := range s.Statuses {
		out.Statuses = append(out.Statuses, &client.VertexStatus{ID: st.ID, Vertex: st.Vertex, Name: st.Name, Total: st.Total, Current: st.Current,
			Timestamp: st.Timestamp, Started: st.Started, Completed: st.Completed})
	}
	for _, l := range s.Logs {
		out.Logs = append(out.Logs, &client.VertexLog{Vertex: l.Vertex, Stream: l.Stream, Data: l.Data, Timestamp: l.Timestamp})
	}
	for _, w := range s.Warnings {
		out.Warnings = append(out.Warnings, &client.VertexWarning{Vertex: w.Vertex, Level: w.Level, Short: w.Short, Detail: w.Detail, URL: w.URL})
	}
	return out
}

package progress

import (
	"fmt"

	digest "github.com/opencontainers/go-digest"
)

// maxWarnings is how many warnings a progress state keeps (the latest).
const maxWarnings = 100

// State folds solve statuses into what a late watcher needs: the
// latest state of each vertex and of each vertex status (as BuildKit's
// flightcontrol keeps the latest progress item per id), the latest
// warnings, and the last bytes of the logs up to a limit, after a line
// "... N bytes dropped". It never modifies the statuses it is given. The
// zero value is not usable; call NewState.
type State struct {
	limit    int
	vertexes map[digest.Digest]*Vertex
	vorder   []digest.Digest
	statuses map[string]*VertexStatus
	sorder   []string
	logs     []*VertexLog // logs[first:] are kept
	first    int
	logBytes int
	dropped  int64
	warnings []*VertexWarning
}

// NewState returns an empty state that keeps at most limit bytes
// of logs (0: none).
func NewState(limit int) *State {
	return &State{limit: max(limit, 0), vertexes: map[digest.Digest]*Vertex{}, statuses: map[string]*VertexStatus{}}
}

// Add folds s into the state.
func (p *State) Add(s *Status) {
	if s == nil {
		return
	}
	for _, v := range s.Vertexes {
		if _, ok := p.vertexes[v.Digest]; !ok {
			p.vorder = append(p.vorder, v.Digest)
		}
		p.vertexes[v.Digest] = v
	}
	for _, st := range s.Statuses {
		k := string(st.Vertex) + "\x00" + st.ID
		if _, ok := p.statuses[k]; !ok {
			p.sorder = append(p.sorder, k)
		}
		p.statuses[k] = st
	}
	for _, l := range s.Logs {
		p.addLog(l)
	}
	p.warnings = append(p.warnings, s.Warnings...)
	if n := len(p.warnings); n > maxWarnings {
		p.warnings = append([]*VertexWarning(nil), p.warnings[n-maxWarnings:]...)
	}
}

// addLog keeps l and drops the oldest logs beyond the limit.
func (p *State) addLog(l *VertexLog) {
	if len(l.Data) > p.limit {
		cut := len(l.Data) - p.limit
		p.dropped += int64(cut)
		if p.limit == 0 {
			return
		}
		c := *l
		c.Data = append([]byte(nil), l.Data[cut:]...)
		l = &c
	}
	p.logs = append(p.logs, l)
	p.logBytes += len(l.Data)
	for p.logBytes > p.limit {
		old, excess := p.logs[p.first], p.logBytes-p.limit
		if len(old.Data) > excess {
			// Cut the oldest log's start: exactly the limit is kept.
			c := *old
			c.Data = append([]byte(nil), old.Data[excess:]...)
			p.logs[p.first] = &c
			p.logBytes -= excess
			p.dropped += int64(excess)
			break
		}
		p.logs[p.first] = nil
		p.first++
		p.logBytes -= len(old.Data)
		p.dropped += int64(len(old.Data))
	}
	if p.first > len(p.logs)/2 {
		p.logs = append([]*VertexLog(nil), p.logs[p.first:]...)
		p.first = 0
	}
}

// Dropped returns how many bytes of logs were dropped.
func (p *State) Dropped() int64 { return p.dropped }

// Status returns the state as one solve status; nil when nothing was
// added.
func (p *State) Status() *Status {
	if len(p.vorder) == 0 && len(p.sorder) == 0 && len(p.logs) == p.first && len(p.warnings) == 0 && p.dropped == 0 {
		return nil
	}
	s := &Status{Warnings: append([]*VertexWarning(nil), p.warnings...)}
	for _, d := range p.vorder {
		s.Vertexes = append(s.Vertexes, p.vertexes[d])
	}
	for _, k := range p.sorder {
		s.Statuses = append(s.Statuses, p.statuses[k])
	}
	kept := p.logs[p.first:]
	if p.dropped > 0 {
		note := &VertexLog{Stream: 2, Data: fmt.Appendf(nil, "... %d bytes dropped\n", p.dropped)}
		if len(kept) > 0 {
			note.Vertex, note.Timestamp = kept[0].Vertex, kept[0].Timestamp
		} else if len(p.vorder) > 0 {
			note.Vertex = p.vorder[len(p.vorder)-1]
		}
		s.Logs = append(s.Logs, note)
	}
	s.Logs = append(s.Logs, kept...)
	return s
}

package builder

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"

	"github.com/ispec-dev/ispec/builder/progress"
)

// A replica of the previous release reads BuildKit's type from the
// stream where this one writes ispec's: the JSON is the same.
func TestStatusIsBuildKitsInJSONAndConvertsBack(t *testing.T) {
	now := time.Unix(1700000000, 0).UTC()
	d := digest.FromString("step")
	bk := &client.SolveStatus{
		Vertexes: []*client.Vertex{{Digest: d, Inputs: []digest.Digest{digest.FromString("base")}, Name: "[ispec] step", Started: &now, Completed: &now, Cached: true, Error: "e",
			ProgressGroup: &pb.ProgressGroup{Id: "g", Name: "group", Weak: true}}},
		Statuses: []*client.VertexStatus{{ID: "pull", Vertex: d, Name: "pulling", Total: 10, Current: 5, Timestamp: now, Started: &now, Completed: &now}},
		Logs:     []*client.VertexLog{{Vertex: d, Stream: 2, Data: []byte("log\n"), Timestamp: now}},
		Warnings: []*client.VertexWarning{{Vertex: d, Level: 1, Short: []byte("short"), Detail: [][]byte{[]byte("detail")}, URL: "https://example.com"}},
	}
	own := StatusOf(bk)
	if got := SolveStatus(own); !reflect.DeepEqual(got, bk) {
		t.Errorf("converted back: %+v, want %+v", got, bk)
	}
	a, _ := json.Marshal(bk)
	b, _ := json.Marshal(own)
	if string(a) != string(b) {
		t.Errorf("JSON differs:\nbuildkit %s\nispec    %s", a, b)
	}
	var back progress.Status
	if err := json.Unmarshal(a, &back); err != nil || !reflect.DeepEqual(&back, own) {
		t.Errorf("BuildKit's JSON read as %+v (%v), want %+v", &back, err, own)
	}
}

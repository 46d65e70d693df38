package wire

import (
	"reflect"
	"testing"
	"time"

	digest "github.com/opencontainers/go-digest"

	apiv1 "github.com/ispec-dev/ispec/api/ispec/v1"
	"github.com/ispec-dev/ispec/builder/progress"
	"github.com/ispec-dev/ispec/ensure/call"
)

func TestEveryClassComesBackAsItsOwnOrItsAPIsClass(t *testing.T) {
	for c := call.ClassInternal; c <= call.ClassNotFound; c++ {
		back := ClassFromAPI(ClassToAPI(c))
		// The API has one class for busy and unavailable, and one for
		// invalid and not found; their gRPC codes tell them apart.
		want := map[call.Class]call.Class{call.ClassBusy: call.ClassUnavailable, call.ClassNotFound: call.ClassInvalid}[c]
		if want == call.ClassInternal {
			want = c
		}
		if back != want {
			t.Errorf("class %v came back as %v, want %v", c, back, want)
		}
	}
}

func TestProgressRoundTrips(t *testing.T) {
	now := time.Unix(1700000000, 0).UTC()
	d := digest.FromString("step")
	in := &progress.Status{
		Vertexes: []*progress.Vertex{{Digest: d, Inputs: []digest.Digest{digest.FromString("base")}, Name: "[ispec] step", Started: &now, Completed: &now, Cached: true,
			ProgressGroup: &progress.Group{ID: "g", Name: "group", Weak: true}}},
		Statuses: []*progress.VertexStatus{{ID: "pull", Vertex: d, Name: "pulling", Total: 10, Current: 5, Timestamp: now, Started: &now}},
		Logs:     []*progress.VertexLog{{Vertex: d, Stream: 2, Data: []byte("log\n"), Timestamp: now}},
		Warnings: []*progress.VertexWarning{{Vertex: d, Level: 1, Short: []byte("short"), Detail: [][]byte{[]byte("detail")}, URL: "https://example.com"}},
	}
	ev := EventToAPI(call.Event{Kind: call.KindProgress, Status: in, Time: now}, apiv1.ProgressDetail_PROGRESS_DETAIL_FULL, nil)
	if ev == nil || ev.GetProgress() == nil {
		t.Fatalf("no progress in %v", ev)
	}
	if got := ProgressFromAPI(ev.GetProgress()); !reflect.DeepEqual(got, in) {
		t.Errorf("progress came back as %+v, want %+v", got, in)
	}
}

func TestOutcomesRoundTrip(t *testing.T) {
	for _, o := range []call.Outcome{call.OutcomeFound, call.OutcomeBuilt, call.OutcomeJoined} {
		if got := OutcomeFromAPI(OutcomeToAPI(o)); got != o {
			t.Errorf("outcome %v came back as %v", o, got)
		}
	}
}

func TestPythonRoundTrip(t *testing.T) {
	in := map[string][]string{"linux/arm64": {"b==2"}, "linux/amd64": {"a==1", "pip==24.0"}}
	api := PythonToAPI(in)
	if len(api) != 2 || api[0].GetPlatform() != "linux/amd64" || api[1].GetPlatform() != "linux/arm64" {
		t.Fatalf("PythonToAPI = %v; want sorted by platform", api)
	}
	if got := PythonFromAPI(api); !reflect.DeepEqual(got, in) {
		t.Errorf("round trip = %v, want %v", got, in)
	}
	if PythonToAPI(nil) != nil || PythonFromAPI(nil) != nil {
		t.Error("nothing should stay nothing")
	}
}

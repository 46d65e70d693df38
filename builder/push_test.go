package builder

import (
	"errors"
	"fmt"
	"testing"

	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"
)

func TestBlobUnknownPush(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&PushError{Ref: "r", Err: errors.New("failed to push r: unknown: blob unknown to registry - sha256:00")}, true},
		{fmt.Errorf("pipeline: %w", &PushError{Ref: "r", Err: errors.New("unexpected status: 400 Bad Request\nmanifest blob unknown: blob unknown to registry")}), true},
		{&PushError{Ref: "r", Err: errors.New("failed to push r: 401 Unauthorized")}, false},
		{&StepError{Step: "[ispec] commands[0] x", Err: errors.New("blob unknown to registry")}, false},
		{errors.New("manifest blob unknown"), false},
	} {
		if got := blobUnknownPush(tc.err); got != tc.want {
			t.Errorf("blobUnknownPush(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestCacheExportOnly(t *testing.T) {
	show := cacheExportOnly()
	exp, step := digest.FromString("export"), digest.FromString("step")
	if s := show(&client.SolveStatus{Vertexes: []*client.Vertex{{Digest: step, Name: "[ispec] pip install x", Cached: true}}}); s != nil {
		t.Errorf("a cached step of the export's solve is shown: %+v", s)
	}
	s := show(&client.SolveStatus{Vertexes: []*client.Vertex{{Digest: exp, Name: cacheExportVertexName}, {Digest: step, Name: "[ispec] pip install x"}}})
	if s == nil || len(s.Vertexes) != 1 || s.Vertexes[0].Digest != exp {
		t.Fatalf("the export's vertex alone should be shown: %+v", s)
	}
	// Later statuses and logs of the export name only its digest.
	s = show(&client.SolveStatus{
		Statuses: []*client.VertexStatus{{Vertex: exp, ID: "writing layer"}, {Vertex: step, ID: "x"}},
		Logs:     []*client.VertexLog{{Vertex: exp, Data: []byte("ok")}, {Vertex: step, Data: []byte("no")}},
	})
	if s == nil || len(s.Statuses) != 1 || len(s.Logs) != 1 || s.Statuses[0].Vertex != exp || s.Logs[0].Vertex != exp {
		t.Errorf("the export's statuses and logs alone should be shown: %+v", s)
	}
}

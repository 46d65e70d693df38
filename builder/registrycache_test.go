package builder

import (
	"strings"
	"testing"

	"github.com/moby/buildkit/client"
)

func TestMissingCacheIsNotShownAsAnError(t *testing.T) {
	missing := &client.Vertex{Name: cacheImportVertexPrefix + "r.example/app:ispec-cache", Error: "failed to configure registry cache importer: r.example/app:ispec-cache: not found"}
	refused := &client.Vertex{Name: cacheImportVertexPrefix + "r.example/ispec-cache:family-x", Error: "unexpected status: 403 Forbidden"}
	step := &client.Vertex{Name: "[ispec] commands[0] false", Error: "exit code: 1"}
	in := &client.SolveStatus{Vertexes: []*client.Vertex{missing, refused, step}}
	out := quietMissingCache(in)
	if out.Vertexes[0].Error != "" || !strings.HasSuffix(out.Vertexes[0].Name, "(none yet)") {
		t.Errorf("a missing cache is shown as %+v", out.Vertexes[0])
	}
	if out.Vertexes[1].Error == "" || out.Vertexes[2].Error == "" {
		t.Error("other errors were hidden")
	}
	if in.Vertexes[0].Error == "" {
		t.Error("the shared status was modified")
	}
}

package progress

import (
	"bytes"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
)

func TestStateCapsLogsInBytes(t *testing.T) {
	st := NewState(100)
	d := digest.FromString("v")
	st.Add(&Status{Logs: []*VertexLog{{Vertex: d, Data: bytes.Repeat([]byte("a"), 250)}}})
	st.Add(&Status{Logs: []*VertexLog{{Vertex: d, Data: []byte("0123456789\n")}}})
	s := st.Status()
	var got bytes.Buffer
	for _, l := range s.Logs {
		got.Write(l.Data)
	}
	want := "... 161 bytes dropped\n" + strings.Repeat("a", 89) + "0123456789\n"
	if got.String() != want || st.Dropped() != 161 {
		t.Errorf("logs %q (dropped %d), want %q", got.String(), st.Dropped(), want)
	}
	if NewState(100).Status() != nil {
		t.Error("an empty state has a status")
	}
}

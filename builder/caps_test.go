package builder

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/moby/buildkit/solver/pb"
	"github.com/moby/buildkit/util/apicaps"
	apicapspb "github.com/moby/buildkit/util/apicaps/pb"
)

// TestMergeSupported: a daemon that lists merge and diff ops merges; one
// that lacks either (an older BuildKit) or disables it gets the linear
// graph, with a reason that names the capability.
func TestMergeSupported(t *testing.T) {
	if err := mergeSupported(pb.Caps.CapSet(pb.Caps.All())); err != nil {
		t.Errorf("this BuildKit's own caps: %v, want merge supported", err)
	}
	without := func(id apicaps.CapID) []*apicapspb.APICap {
		var out []*apicapspb.APICap
		for _, c := range pb.Caps.All() {
			if apicaps.CapID(c.ID) != id {
				out = append(out, c)
			}
		}
		return out
	}
	disabled := pb.Caps.All()
	for _, c := range disabled {
		if apicaps.CapID(c.ID) == pb.CapDiffOp {
			c.Enabled = false
		}
	}
	for name, caps := range map[string][]*apicapspb.APICap{
		"no merge op":      without(pb.CapMergeOp),
		"no diff op":       without(pb.CapDiffOp),
		"diff op disabled": disabled,
		"no caps at all":   nil,
	} {
		err := mergeSupported(pb.Caps.CapSet(caps))
		if err == nil {
			t.Errorf("%s: merge supported", name)
			continue
		}
		if !strings.Contains(err.Error(), "mergeop") && !strings.Contains(err.Error(), "diffop") {
			t.Errorf("%s: %v names no capability", name, err)
		}
	}
}

// TestLinearFallbackNotice: the fallback notice is one finished step with
// its reason, shown by the plain display.
func TestLinearFallbackNotice(t *testing.T) {
	prog := NewProgress()
	publishNotice(prog, LinearFallbackStep, "the daemon cannot merge\n")
	prog.Close()
	var n int
	for s := range prog.Subscribe(context.Background()) {
		n += len(s.Vertexes)
	}
	if n != 1 {
		t.Errorf("%d vertices, want 1", n)
	}
	var out bytes.Buffer
	if err := Display(context.Background(), ModePlain, &out, prog.Subscribe(context.Background())); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{LinearFallbackStep, "the daemon cannot merge"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("plain progress %q lacks %q", out.String(), want)
		}
	}
}

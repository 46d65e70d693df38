package builder

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestE2EResolvePython: pip resolves the spec's packages on its base
// inside BuildKit and the report comes back through the local output:
// every distribution with its file, URL and sha256.
func TestE2EResolvePython(t *testing.T) {
	env := loadDevEnv(t)
	b := newE2EBuilder(t, env)
	index, _ := privateIndex(t)
	img := loadSpec(t, "name: r\nbase_image: "+env.BasePython+"\npip_index: "+index+"/simple\npackages: [\"ispec-lk-core[fast]\"]\n", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	pins, err := b.ResolvePython(ctx, img, ResolveOptions{Base: env.BasePython, Platform: "linux/amd64"})
	if err != nil {
		t.Fatalf("ResolvePython: %v", err)
	}
	var got []string
	for _, p := range pins {
		got = append(got, p.Name+"=="+p.Version)
		if len(p.SHA256) != 64 || !strings.HasPrefix(p.URL, index+"/files/") || !strings.HasSuffix(p.URL, "/"+p.File) {
			t.Errorf("pin %+v: want the index's URL, the file and its sha256", p)
		}
	}
	if want := "ispec-lk-core==1.0.0 ispec-lk-fast==0.5.0 ispec-lk-util==1.1.0"; strings.Join(got, " ") != want {
		t.Errorf("resolved %s, want %s", strings.Join(got, " "), want)
	}
	// Constraints keep a pin.
	pins, err = b.ResolvePython(ctx, img, ResolveOptions{Base: env.BasePython, Platform: "linux/amd64", Constraints: []byte("ispec-lk-util==1.0.0\n")})
	if err != nil {
		t.Fatalf("ResolvePython with constraints: %v", err)
	}
	if len(pins) != 3 || pins[2].Version != "1.0.0" {
		t.Errorf("with a constraint: %+v, want util 1.0.0", pins)
	}
}

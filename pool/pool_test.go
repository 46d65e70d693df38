package pool

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/ispec-dev/ispec/builder"
	"github.com/ispec-dev/ispec/spec"
)

func img(base string, apt ...string) *spec.Image {
	return &spec.Image{Base: base, Spec: &spec.Spec{AptPackages: apt}}
}

func TestSameBaseAndAptRankAlike(t *testing.T) {
	p, err := New([]string{"tcp://a:1", "tcp://b:1", "tcp://c:1"}, builder.Options{})
	if err != nil {
		t.Fatal(err)
	}
	k1 := Key(img("debian:12", "git", "curl"))
	k2 := Key(img("debian:12", "curl", "git"))
	if k1 != k2 {
		t.Errorf("apt order changed the key: %q vs %q", k1, k2)
	}
	if Key(img("debian:12", "git")) == k1 || Key(img("ubuntu:24.04", "git", "curl")) == k1 {
		t.Error("another base or apt set has the same key")
	}
	r := p.Rank(k1)
	if len(r) != 3 || fmt.Sprint(r) != fmt.Sprint(p.Rank(k2)) {
		t.Errorf("ranking %v not stable", r)
	}
	// Spread: over many keys each daemon ranks first sometimes.
	first := map[string]int{}
	for i := 0; i < 300; i++ {
		first[p.Rank(Key(img(fmt.Sprintf("base-%d", i))))[0]]++
	}
	for _, a := range p.Addrs() {
		if first[a] < 50 {
			t.Errorf("daemon %s first for %d of 300 keys", a, first[a])
		}
	}
	// Removing a daemon moves only the keys it ranked first.
	q, _ := New([]string{"tcp://a:1", "tcp://b:1"}, builder.Options{})
	for i := 0; i < 300; i++ {
		k := Key(img(fmt.Sprintf("base-%d", i)))
		if was := p.Rank(k)[0]; was != "tcp://c:1" && q.Rank(k)[0] != was {
			t.Fatalf("key %d moved from %s without its daemon leaving", i, was)
		}
	}
}

func TestNoDaemonAnswersIsUnavailable(t *testing.T) {
	p, err := New([]string{"unix:///nonexistent/a.sock", "unix:///nonexistent/b.sock"}, builder.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Build(context.Background(), img("busybox"), builder.BuildOptions{})
	var down *builder.UnavailableError
	if !errors.As(err, &down) {
		t.Errorf("err = %v, want an UnavailableError", err)
	}
}

func TestBadPools(t *testing.T) {
	for name, tc := range map[string]struct {
		addrs []string
		opts  []Option
	}{
		"no address":     {nil, nil},
		"blank address":  {[]string{" ", ""}, nil},
		"negative limit": {[]string{"tcp://a:1"}, []Option{WithMaxPerDaemon(-1)}},
		"zero health":    {[]string{"tcp://a:1"}, []Option{WithHealthTimeout(0)}},
		"nil registerer": {[]string{"tcp://a:1"}, []Option{WithRegisterer(nil)}},
	} {
		if _, err := New(tc.addrs, builder.Options{}, tc.opts...); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

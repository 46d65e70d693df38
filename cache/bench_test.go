package cache

import (
	"context"
	"testing"
)

// BenchmarkLookupCold measures a lookup by a fresh Remote: /v2/ handshake
// plus manifest HEAD, against the in-memory registry over loopback.
func BenchmarkLookupCold(b *testing.B) {
	tr := newTestRegistry(b)
	tr.pushRandom(b, "team/app:present")
	ref := tr.tag(b, "team/app:present")
	ctx := context.Background()
	for b.Loop() {
		r, err := NewRemote(WithKeychain(anonymousKeychain{}))
		if err != nil {
			b.Fatal(err)
		}
		if got := r.Lookup(ctx, ref); got.State != Exists {
			b.Fatal(got.Err)
		}
	}
}

// BenchmarkLookupWarm measures a lookup by a Remote that has already talked
// to the registry (connection and handshake reused): one HEAD.
func BenchmarkLookupWarm(b *testing.B) {
	tr := newTestRegistry(b)
	tr.pushRandom(b, "team/app:present")
	ref := tr.tag(b, "team/app:present")
	ctx := context.Background()
	r := newRemote(b)
	r.Lookup(ctx, ref)
	for b.Loop() {
		if got := r.Lookup(ctx, ref); got.State != Exists {
			b.Fatal(got.Err)
		}
	}
}

// BenchmarkIndexHit measures a Cached lookup answered by the on-disk index
// (open, read, close), with no network.
func BenchmarkIndexHit(b *testing.B) {
	idx, err := OpenIndex(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	ref := testTag(b, "registry.example/team/app:abc")
	if err := idx.Put(ref, testHash(1), ""); err != nil {
		b.Fatal(err)
	}
	c := NewCached(newRemote(b, WithTransport(failingTransport{b})), idx)
	ctx := context.Background()
	for b.Loop() {
		if got := c.Lookup(ctx, ref); !got.FromIndex {
			b.Fatal("miss")
		}
	}
}

// BenchmarkIndexPut measures recording one answer (a durable bbolt commit).
func BenchmarkIndexPut(b *testing.B) {
	idx, err := OpenIndex(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	ref := testTag(b, "registry.example/team/app:abc")
	for b.Loop() {
		if err := idx.Put(ref, testHash(1), ""); err != nil {
			b.Fatal(err)
		}
	}
}

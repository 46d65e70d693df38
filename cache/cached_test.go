package cache

import (
	"context"
	"errors"
	"net/http"
	"os"
	"testing"
)

func TestCached(t *testing.T) {
	tr := newTestRegistry(t)
	digest := tr.pushRandom(t, "team/app:present")
	ctx := context.Background()
	idx, err := OpenIndex(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	present, missing := tr.tag(t, "team/app:present"), tr.tag(t, "team/app:missing")
	online := NewCached(newRemote(t), idx)

	// A miss asks the registry and records Exists.
	got := online.Lookup(ctx, present)
	if got.State != Exists || got.Digest != digest || got.FromIndex {
		t.Fatalf("first Lookup = %+v, want Exists %v from the registry", got, digest)
	}
	if e, ok, _ := idx.Get(present); !ok || e.Digest != digest {
		t.Fatalf("index entry = %+v, %v, want %v", e, ok, digest)
	}
	// Absent is never recorded.
	if got := online.Lookup(ctx, missing); got.State != Absent {
		t.Fatalf("Lookup(missing) = %v", got.State)
	}
	if _, ok, _ := idx.Get(missing); ok {
		t.Error("an absent answer was recorded")
	}

	// A hit makes no request at all.
	offline := NewCached(newRemote(t, WithTransport(failingTransport{t})), idx)
	got = offline.Lookup(ctx, present)
	if got.State != Exists || got.Digest != digest || !got.FromIndex {
		t.Fatalf("indexed Lookup = %+v, want Exists from the index", got)
	}

	// Unknown answers are not recorded and do not disturb entries.
	tr.setFault(func(w http.ResponseWriter, r *http.Request, n int) bool {
		registryError(w, r, 403, "DENIED", "no")
		return true
	})
	verifying := NewCached(newRemote(t), idx, WithVerify(true))
	got = verifying.Lookup(ctx, present)
	var ue *UnknownError
	if got.State != Unknown || !errors.As(got.Err, &ue) {
		t.Fatalf("verifying Lookup with a 403 = %v %v, want Unknown", got.State, got.Err)
	}
	if _, ok, _ := idx.Get(present); !ok {
		t.Error("an unknown answer removed the entry")
	}

	// Verify re-asks and drops entries the registry no longer has.
	tr.setFault(func(w http.ResponseWriter, r *http.Request, n int) bool {
		registryError(w, r, 404, "MANIFEST_UNKNOWN", "manifest unknown")
		return true
	})
	got = verifying.Lookup(ctx, present)
	if got.State != Absent || got.FromIndex {
		t.Fatalf("verifying Lookup of a deleted tag = %+v, want Absent", got)
	}
	if _, ok, _ := idx.Get(present); ok {
		t.Error("verify kept an entry the registry says is absent")
	}
	tr.setFault(nil)
}

func TestCachedIndexErrors(t *testing.T) {
	tr := newTestRegistry(t)
	tr.pushRandom(t, "team/app:present")
	dir := t.TempDir()
	idx, err := OpenIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Break the index by replacing it with a directory.
	if err := removeAndMkdir(idx.Path()); err != nil {
		t.Fatal(err)
	}
	var seen []error
	c := NewCached(newRemote(t), idx, WithIndexErrors(func(err error) { seen = append(seen, err) }))
	got := c.Lookup(context.Background(), tr.tag(t, "team/app:present"))
	if got.State != Exists {
		t.Fatalf("Lookup with a broken index = %v %v, want Exists from the registry", got.State, got.Err)
	}
	if len(seen) != 2 {
		t.Errorf("index errors reported = %v, want a read and a write error", seen)
	}
}

func TestCachedRemembersInMemory(t *testing.T) {
	tr := newTestRegistry(t)
	digest := tr.pushRandom(t, "team/app:present")
	ctx := context.Background()
	dir := t.TempDir()
	idx, err := OpenIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	present := tr.tag(t, "team/app:present")
	c := NewCached(newRemote(t), idx)
	if got := c.Lookup(ctx, present); got.State != Exists {
		t.Fatalf("first Lookup = %+v", got)
	}
	// A long-lived caller answers a known tag without the file: even one
	// that has since gone, or a registry that fails.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	tr.setFault(func(w http.ResponseWriter, r *http.Request, n int) bool {
		registryError(w, r, 500, "UNKNOWN", "down")
		return true
	})
	for i := 0; i < 3; i++ {
		if got := c.Lookup(ctx, present); got.State != Exists || got.Digest != digest || !got.FromIndex {
			t.Fatalf("Lookup %d = %+v, want Exists from memory", i, got)
		}
	}
}

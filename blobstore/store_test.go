package blobstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func digestOf(b []byte) Digest {
	s := sha256.Sum256(b)
	return Digest{Hex: hex.EncodeToString(s[:]), Size: int64(len(b))}
}

func put(t *testing.T, s *Store, b []byte) Digest {
	t.Helper()
	d := digestOf(b)
	w, err := s.Writer(context.Background(), d)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	return d
}

func files(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		out = append(out, de.Name())
	}
	return out
}

func TestLeastRecentlyUsedIsEvicted(t *testing.T) {
	s, err := Open(t.TempDir(), WithMaxBytes(30))
	if err != nil {
		t.Fatal(err)
	}
	a := put(t, s, bytes.Repeat([]byte("a"), 10))
	b := put(t, s, bytes.Repeat([]byte("b"), 10))
	c := put(t, s, bytes.Repeat([]byte("c"), 10))
	// Using a makes b the least recently used.
	if m := s.Missing([]Digest{a}); len(m) != 0 {
		t.Fatalf("missing %v", m)
	}
	d := put(t, s, bytes.Repeat([]byte("d"), 10))
	if got := s.Missing([]Digest{a, b, c, d}); len(got) != 1 || got[0] != b {
		t.Errorf("missing %v, want only b (the least recently used)", got)
	}
	if s.Used() != 30 {
		t.Errorf("used %d, want 30", s.Used())
	}
	if _, err := os.Stat(filepath.Join(s.dir, b.Hex)); !os.IsNotExist(err) {
		t.Errorf("b's file is still on disk: %v", err)
	}
}

func TestPinnedBlobsAreNotEvicted(t *testing.T) {
	s, err := Open(t.TempDir(), WithMaxBytes(20))
	if err != nil {
		t.Fatal(err)
	}
	a := put(t, s, bytes.Repeat([]byte("a"), 10))
	b := put(t, s, bytes.Repeat([]byte("b"), 10))
	absent := digestOf([]byte("never written"))
	release, missing := s.Pin([]Digest{a, b, absent})
	if len(missing) != 1 || missing[0] != absent {
		t.Fatalf("missing %v, want the absent blob", missing)
	}
	c := put(t, s, bytes.Repeat([]byte("c"), 10))
	if !s.Has(a) || !s.Has(b) {
		t.Error("a pinned blob was evicted")
	}
	if s.Used() != 30 {
		t.Errorf("used %d, want 30 (over the bound while pinned)", s.Used())
	}
	release()
	release() // a second call does nothing
	if s.Used() > 20 {
		t.Errorf("used %d after release, want at most 20", s.Used())
	}
	if m := s.Missing([]Digest{c}); len(m) != 0 {
		t.Error("the most recent blob was evicted")
	}
}

func TestConcurrentWritesOfOneBlob(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789"), 100_000)
	d := digestOf(data)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := s.Writer(context.Background(), d)
			if err != nil {
				errs[i] = err
				return
			}
			defer w.Close()
			for off := 0; off < len(data); off += 4096 {
				if _, err := w.Write(data[off:min(off+4096, len(data))]); err != nil {
					errs[i] = err
					return
				}
			}
			errs[i] = w.Commit()
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	if got := files(t, dir); len(got) != 1 || got[0] != d.Hex {
		t.Errorf("store folder holds %v, want only the blob", got)
	}
	var buf bytes.Buffer
	if err := s.Copy(&buf, d); err != nil || !bytes.Equal(buf.Bytes(), data) {
		t.Errorf("copy: %v (equal %v)", err, bytes.Equal(buf.Bytes(), data))
	}
	if s.Used() != d.Size {
		t.Errorf("used %d, want %d", s.Used(), d.Size)
	}
}

func TestMismatchIsNotStored(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	d := digestOf([]byte("the real bytes"))
	for name, body := range map[string][]byte{"other bytes": []byte("other  bytes!!"), "short": []byte("the real"), "long": []byte("the real bytes and more")} {
		w, err := s.Writer(context.Background(), d)
		if err != nil {
			t.Fatal(err)
		}
		_, werr := w.Write(body)
		cerr := w.Commit()
		if !errors.Is(werr, ErrMismatch) && !errors.Is(cerr, ErrMismatch) {
			t.Errorf("%s: write %v, commit %v; want ErrMismatch", name, werr, cerr)
		}
		w.Close()
	}
	if s.Has(d) || len(files(t, dir)) != 0 {
		t.Errorf("something was stored: %v", files(t, dir))
	}
}

func TestInFlightBytesAreBounded(t *testing.T) {
	s, err := Open(t.TempDir(), WithMaxInFlight(10), WithMaxBytes(100))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Writer(context.Background(), digestOf(make([]byte, 11))); !errors.Is(err, ErrTooLarge) {
		t.Errorf("a blob above the in-flight bound: %v, want ErrTooLarge", err)
	}
	first, err := s.Writer(context.Background(), digestOf(make([]byte, 8)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.Writer(ctx, digestOf(make([]byte, 5))); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("a writer past the bound: %v, want it to wait", err)
	}
	got := make(chan error, 1)
	go func() {
		w, err := s.Writer(context.Background(), digestOf(make([]byte, 5)))
		if err == nil {
			w.Close()
		}
		got <- err
	}()
	first.Close()
	select {
	case err := <-got:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting writer did not get room after the first closed")
	}
}

func TestReopenKeepsBlobsAndDropsUnfinishedWrites(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	d := put(t, s, []byte("kept"))
	w, err := s.Writer(context.Background(), digestOf([]byte("unfinished")))
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("unfin"))
	s2, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !s2.Has(d) || len(files(t, dir)) != 1 {
		t.Errorf("reopened store: has %v, files %v", s2.Has(d), files(t, dir))
	}
	w.Close()
}

func TestParseDigest(t *testing.T) {
	good := "sha256:" + digestOf(nil).Hex
	if d, err := ParseDigest(good, 0); err != nil || d.String() != good {
		t.Errorf("%s: %v", good, err)
	}
	for _, bad := range []string{"", "sha256:", "md5:" + digestOf(nil).Hex, "sha256:" + digestOf(nil).Hex[:63] + "G", "SHA256:" + digestOf(nil).Hex} {
		if _, err := ParseDigest(bad, 0); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := ParseDigest(good, -1); !errors.Is(err, ErrInvalid) {
		t.Error("a negative size was accepted")
	}
}

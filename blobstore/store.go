// Package blobstore is the server's content-addressed store of uploaded
// file contents (blobs), as Bazel's remote-execution CAS keeps them: one
// file per SHA-256 on disk, written by streaming writers that verify the
// digest before a blob becomes visible, bounded in size with least
// recently used eviction, and pinned while a build reads them.
package blobstore

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sync/semaphore"
)

// Sentinel errors, for errors.Is.
var (
	// ErrMismatch: a blob's bytes do not match its digest or size.
	ErrMismatch = errors.New("blob does not match its digest")
	// ErrTooLarge: a blob is larger than the store may hold or take in at
	// once.
	ErrTooLarge = errors.New("blob is larger than the store's limit")
	// ErrInvalid: a malformed digest or size.
	ErrInvalid = errors.New("invalid blob digest")
)

// Digest names a blob: the SHA-256 of its bytes and its size.
type Digest struct {
	// Hex is the SHA-256 in 64 lowercase hex digits.
	Hex string
	// Size is the blob's size in bytes.
	Size int64
}

// ParseDigest parses "sha256:<hex>" and a size.
func ParseDigest(s string, size int64) (Digest, error) {
	h, ok := strings.CutPrefix(s, "sha256:")
	if !ok || len(h) != 64 || strings.ToLower(h) != h {
		return Digest{}, fmt.Errorf("%w: %.80q is not sha256:<64 lowercase hex digits>", ErrInvalid, s)
	}
	if _, err := hex.DecodeString(h); err != nil {
		return Digest{}, fmt.Errorf("%w: %.80q is not sha256:<64 lowercase hex digits>", ErrInvalid, s)
	}
	if size < 0 {
		return Digest{}, fmt.Errorf("%w: size %d is negative", ErrInvalid, size)
	}
	return Digest{Hex: h, Size: size}, nil
}

// String is "sha256:<hex>".
func (d Digest) String() string { return "sha256:" + d.Hex }

// Store is a bounded blob store in one folder. It is safe for concurrent
// use.
type Store struct {
	dir      string
	max      int64
	inflight *semaphore.Weighted
	maxIn    int64

	mu    sync.Mutex
	blobs map[string]*entry // by hex
	lru   *list.List        // of *entry; front is the most recently used
	used  int64
}

type entry struct {
	d    Digest
	pins int
	elem *list.Element
}

// Option configures a Store.
type Option func(*Store) error

// WithMaxBytes bounds the bytes of stored blobs: past it the least
// recently used unpinned blobs are removed. Pinned blobs may hold the
// store above it until they are released.
//
// The default is 4 GiB.
func WithMaxBytes(n int64) Option {
	return func(s *Store) error {
		if n <= 0 {
			return fmt.Errorf("max bytes %d: must be positive", n)
		}
		s.max = n
		return nil
	}
}

// WithMaxInFlight bounds the bytes of blobs being written at once (their
// declared sizes): a writer waits for room.
//
// The default is 1 GiB.
func WithMaxInFlight(n int64) Option {
	return func(s *Store) error {
		if n <= 0 {
			return fmt.Errorf("max in-flight bytes %d: must be positive", n)
		}
		s.maxIn = n
		return nil
	}
}

// Open returns the store in dir, creating it (0700). Blobs a previous
// store left in dir are kept (and indexed); unfinished writes are removed.
func Open(dir string, opts ...Option) (*Store, error) {
	s := &Store{dir: dir, max: 4 << 30, maxIn: 1 << 30, blobs: map[string]*entry{}, lru: list.New()}
	for _, o := range opts {
		if err := o(s); err != nil {
			return nil, fmt.Errorf("blob store: %w", err)
		}
	}
	s.inflight = semaphore.NewWeighted(s.maxIn)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("blob store: %w", err)
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("blob store: %w", err)
	}
	for _, de := range des {
		p := filepath.Join(dir, de.Name())
		if strings.HasPrefix(de.Name(), tmpPrefix) {
			os.Remove(p)
			continue
		}
		info, err := de.Info()
		if err != nil || !info.Mode().IsRegular() {
			continue
		}
		d, err := ParseDigest("sha256:"+de.Name(), info.Size())
		if err != nil {
			continue
		}
		s.add(d)
	}
	s.mu.Lock()
	s.evict()
	s.mu.Unlock()
	return s, nil
}

const tmpPrefix = "tmp-"

func (s *Store) path(hex string) string { return filepath.Join(s.dir, hex) }

// add indexes a blob on disk as the most recently used; s.mu is held or
// the store is not shared yet.
func (s *Store) add(d Digest) *entry {
	if e, ok := s.blobs[d.Hex]; ok {
		s.lru.MoveToFront(e.elem)
		return e
	}
	e := &entry{d: d}
	e.elem = s.lru.PushFront(e)
	s.blobs[d.Hex] = e
	s.used += d.Size
	return e
}

// evict removes least recently used unpinned blobs (but keep, a blob
// just written) while the store is over its bound; s.mu is held.
func (s *Store) evict(keep ...*entry) {
	for el := s.lru.Back(); el != nil && s.used > s.max; {
		prev := el.Prev()
		e := el.Value.(*entry)
		if e.pins == 0 && (len(keep) == 0 || e != keep[0]) {
			s.lru.Remove(el)
			delete(s.blobs, e.d.Hex)
			s.used -= e.d.Size
			os.Remove(s.path(e.d.Hex))
		}
		el = prev
	}
}

// Used returns the bytes of stored blobs.
func (s *Store) Used() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.used
}

// Has reports whether the store holds d.
func (s *Store) Has(d Digest) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.blobs[d.Hex]
	return ok && e.d.Size == d.Size
}

// Missing returns the digests of ds the store does not hold, each once,
// in order. The ones it holds count as used.
func (s *Store) Missing(ds []Digest) []Digest {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Digest
	seen := map[Digest]bool{}
	for _, d := range ds {
		if seen[d] {
			continue
		}
		seen[d] = true
		if e, ok := s.blobs[d.Hex]; ok && e.d.Size == d.Size {
			s.lru.MoveToFront(e.elem)
			continue
		}
		out = append(out, d)
	}
	return out
}

// Pin keeps the blobs of ds that the store holds from eviction until
// release is called (once), and returns those it does not hold.
func (s *Store) Pin(ds []Digest) (release func(), missing []Digest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var pinned []*entry
	seen := map[Digest]bool{}
	for _, d := range ds {
		if seen[d] {
			continue
		}
		seen[d] = true
		e, ok := s.blobs[d.Hex]
		if !ok || e.d.Size != d.Size {
			missing = append(missing, d)
			continue
		}
		e.pins++
		s.lru.MoveToFront(e.elem)
		pinned = append(pinned, e)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			for _, e := range pinned {
				e.pins--
			}
			s.evict()
		})
	}, missing
}

// Open opens a blob for reading. The caller pins it first (Pin): an
// unpinned blob may be evicted at any time.
func (s *Store) Open(d Digest) (*os.File, error) {
	if !s.Has(d) {
		return nil, fmt.Errorf("blob %s: %w", d, os.ErrNotExist)
	}
	return os.Open(s.path(d.Hex))
}

// Writer streams one blob into the store; see Store.Writer.
type Writer struct {
	s        *Store
	d        Digest
	f        *os.File
	h        hash.Hash
	n        int64
	reserved bool
	done     bool
}

// Writer returns a writer of d: it waits (until ctx ends) for room among
// the bytes in flight, and writes to a private file that Commit makes the
// blob. Close releases what an uncommitted writer holds. A blob larger
// than the store or the in-flight bound is ErrTooLarge.
func (s *Store) Writer(ctx context.Context, d Digest) (*Writer, error) {
	if d.Size > s.max || d.Size > s.maxIn {
		return nil, fmt.Errorf("blob %s of %d bytes: %w (%d bytes stored, %d in flight)", d, d.Size, ErrTooLarge, s.max, s.maxIn)
	}
	w := &Writer{s: s, d: d, h: sha256.New()}
	if d.Size > 0 {
		if err := s.inflight.Acquire(ctx, d.Size); err != nil {
			return nil, err
		}
		w.reserved = true
	}
	f, err := os.CreateTemp(s.dir, tmpPrefix)
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("blob store: %w", err)
	}
	w.f = f
	return w, nil
}

// Write appends the blob's next bytes; more bytes than its size is
// ErrMismatch.
func (w *Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errors.New("blob store: write after commit or close")
	}
	if w.n+int64(len(p)) > w.d.Size {
		return 0, fmt.Errorf("blob %s: more than its %d bytes were sent: %w", w.d, w.d.Size, ErrMismatch)
	}
	w.h.Write(p)
	n, err := w.f.Write(p)
	w.n += int64(n)
	return n, err
}

// Written returns the bytes written so far.
func (w *Writer) Written() int64 { return w.n }

// Commit checks the bytes written against the digest and stores the blob;
// on a mismatch nothing is stored (ErrMismatch). Another writer of the
// same blob committing first is not an error.
func (w *Writer) Commit() error {
	if w.done {
		return errors.New("blob store: commit after commit or close")
	}
	defer w.Close()
	if w.n != w.d.Size {
		return fmt.Errorf("blob %s: %d bytes were sent, its size is %d: %w", w.d, w.n, w.d.Size, ErrMismatch)
	}
	if got := hex.EncodeToString(w.h.Sum(nil)); got != w.d.Hex {
		return fmt.Errorf("blob %s: the bytes sent hash to sha256:%s: %w", w.d, got, ErrMismatch)
	}
	if err := w.f.Chmod(0o400); err != nil {
		return fmt.Errorf("blob store: %w", err)
	}
	if err := w.f.Close(); err != nil {
		return fmt.Errorf("blob store: %w", err)
	}
	s := w.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.blobs[w.d.Hex]; ok {
		s.lru.MoveToFront(e.elem)
		return nil
	}
	if err := os.Rename(w.f.Name(), s.path(w.d.Hex)); err != nil {
		return fmt.Errorf("blob store: %w", err)
	}
	s.evict(s.add(w.d))
	return nil
}

// Close abandons an uncommitted writer (its bytes are removed) and
// releases its room in flight. Closing twice, or after Commit, is a no-op.
func (w *Writer) Close() error {
	if w.f != nil {
		w.f.Close()
		os.Remove(w.f.Name()) // gone already when committed
		w.f = nil
	}
	if w.reserved {
		w.s.inflight.Release(w.d.Size)
		w.reserved = false
	}
	w.done = true
	return nil
}

// Copy writes d's bytes to dst and checks their count (a blob changed on
// disk is ErrMismatch). The caller pins d.
func (s *Store) Copy(dst io.Writer, d Digest) error {
	f, err := s.Open(d)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(dst, f)
	if err != nil {
		return err
	}
	if n != d.Size {
		return fmt.Errorf("blob %s: %d bytes on disk, want %d: %w", d, n, d.Size, ErrMismatch)
	}
	return nil
}

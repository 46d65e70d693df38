package cache

import (
	"context"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// CachedOption configures a [Cached].
type CachedOption func(*Cached)

// WithVerify makes every lookup ask the registry even when the index knows
// the tag; an entry the registry now says is absent is deleted.
//
// The default is false: an indexed tag is answered without network.
func WithVerify(verify bool) CachedOption {
	return func(c *Cached) { c.verify = verify }
}

// WithIndexErrors sets a function told of index read and write failures,
// which never fail a lookup (it falls back to the registry).
//
// The default ignores them.
func WithIndexErrors(fn func(error)) CachedOption {
	return func(c *Cached) {
		if fn != nil {
			c.onErr = fn
		}
	}
}

// Cached is a Checker that answers from an Index when it can and records
// the registry's positive answers in it. Negative and unknown answers are
// never recorded.
type Cached struct {
	next   Checker
	idx    *Index
	verify bool
	onErr  func(error)

	mu      sync.Mutex
	fetched map[string]Entry // read by Prepare in one go; nil until then
	known   map[string]Entry // answered or recorded by this Cached
}

// Prepare reads the index entries of refs in one go and prepares the next
// Checker for the refs it does not know (all of them when verifying).
func (c *Cached) Prepare(ctx context.Context, refs []name.Tag) {
	m, err := c.idx.GetMany(refs)
	if err != nil {
		c.onErr(err)
		return
	}
	c.mu.Lock()
	c.fetched = m
	c.mu.Unlock()
	p, ok := c.next.(Preparer)
	if !ok {
		return
	}
	var missing []name.Tag
	for _, ref := range refs {
		if _, known := m[ref.Name()]; c.verify || !known {
			missing = append(missing, ref)
		}
	}
	if len(missing) > 0 {
		p.Prepare(ctx, missing)
	}
}

// entry returns ref's index entry: from memory when this Cached already
// answered or recorded it (a long-lived server asks the file once per
// tag), else from what Prepare read when it did, else from the file.
func (c *Cached) entry(ref name.Tag) (Entry, bool, error) {
	c.mu.Lock()
	m := c.fetched
	e, ok := c.known[ref.Name()]
	c.mu.Unlock()
	if ok {
		return e, true, nil
	}
	if m != nil {
		e, ok := m[ref.Name()]
		return e, ok, nil
	}
	return c.idx.Get(ref)
}

var _ Checker = (*Cached)(nil)

// NewCached returns a Checker that consults idx before next.
func NewCached(next Checker, idx *Index, opts ...CachedOption) *Cached {
	c := &Cached{next: next, idx: idx, onErr: func(error) {}}
	for _, opt := range opts {
		opt(c)
	}
	return c
}

// Lookup answers from the index when ref is recorded there (unless
// verifying), else asks the registry and records an Exists answer.
func (c *Cached) Lookup(ctx context.Context, ref name.Tag) Result {
	e, known, err := c.entry(ref)
	switch {
	case err != nil:
		c.onErr(err)
	case known && !c.verify:
		c.remember(ref, e.Digest, e.MediaType)
		return Result{Ref: ref, State: Exists, Digest: e.Digest, MediaType: e.MediaType, FromIndex: true}
	}
	res := c.next.Lookup(ctx, ref)
	switch res.State {
	case Exists:
		if known && e.Digest == res.Digest {
			break // already recorded: no write
		}
		if err := c.idx.Put(ref, res.Digest, res.MediaType); err != nil {
			c.onErr(err)
		}
		c.remember(ref, res.Digest, res.MediaType)
	case Absent:
		c.forget(ref)
		if known {
			if err := c.idx.Delete(ref); err != nil {
				c.onErr(err)
			}
		}
	}
	return res
}

// Record remembers in the index that ref exists with digest: an image the
// caller has just pushed.
func (c *Cached) Record(ref name.Tag, digest v1.Hash) error {
	c.remember(ref, digest, "")
	return c.idx.Put(ref, digest, "")
}

func (c *Cached) remember(ref name.Tag, d v1.Hash, mt types.MediaType) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.known == nil {
		c.known = map[string]Entry{}
	}
	c.known[ref.Name()] = Entry{Ref: ref.Name(), Digest: d, MediaType: mt}
}

func (c *Cached) forget(ref name.Tag) {
	c.mu.Lock()
	delete(c.known, ref.Name())
	c.mu.Unlock()
}

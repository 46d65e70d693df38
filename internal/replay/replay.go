// Package replay is an append-only stream that any number of followers
// read from its start, however late they come: a build's progress and
// events, shared by every caller that joins the build.
//
// A Log made with NewCompacted keeps it bounded, as BuildKit's
// flightcontrol keeps the latest progress item per id: the items every
// follower has read are folded into what a late follower starts with
// (the latest state of each step and a capped tail of its logs), and a
// follower that falls too far behind is ended with ErrBehind instead of
// holding the items it has not read.
package replay

import (
	"context"
	"errors"
	"sync"
)

// ErrBehind: the follower fell so far behind the stream that the items it
// had not read yet were folded away.
var ErrBehind = errors.New("fell behind the stream")

// Folder folds the items no follower still needs into what a new follower
// reads first.
type Folder[T any] interface {
	// Fold adds items to the folded state, each item once, in order.
	Fold(items []T)
	// Head returns the items a new follower reads in place of every item
	// folded so far. The Log does not modify them.
	Head() []T
	// Size is what an item costs to keep, in bytes (an estimate).
	Size(item T) int
}

// Log holds the items of one stream. The zero value is not usable; call
// New or NewCompacted.
type Log[T any] struct {
	mu      sync.Mutex
	items   []T // from absolute position base on
	base    int // how many items were folded
	closed  bool
	notify  chan struct{} // closed and replaced on every change
	cursors map[*cursor]struct{}

	fold     Folder[T] // nil: nothing is folded
	limit    int       // unfolded bytes beyond which items are folded
	hard     int       // unfolded bytes beyond which followers are dropped; 0: never
	unfolded int       // the size of items
	next     int       // unfolded bytes that trigger the next fold
}

// cursor is a follower's absolute position; -1 when it fell behind.
type cursor struct{ pos int }

// New returns an open, empty Log that keeps every item.
func New[T any]() *Log[T] {
	return &Log[T]{notify: make(chan struct{}), cursors: map[*cursor]struct{}{}}
}

// NewCompacted returns an open, empty Log that folds the items every
// follower has read into f once they cost more than limit bytes (limit
// must be positive), and ends a follower whose unread items cost more
// than hard bytes with ErrBehind (hard 0: never; a follower that lags
// then keeps what it has not read).
func NewCompacted[T any](f Folder[T], limit, hard int) *Log[T] {
	l := New[T]()
	l.fold, l.limit, l.hard, l.next = f, limit, hard, limit
	return l
}

// Add appends an item; adding after Close is ignored.
func (l *Log[T]) Add(v T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.items = append(l.items, v)
	if l.fold != nil {
		l.unfolded += l.fold.Size(v)
		if l.unfolded > l.next {
			l.compact(false)
		}
	}
	close(l.notify)
	l.notify = make(chan struct{})
}

// Compact folds every item no follower still needs now (a finished
// build's log, say); without a Folder it does nothing.
func (l *Log[T]) Compact() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fold != nil {
		l.compact(true)
	}
}

// compact folds the items below the slowest follower; l.mu is held. Past
// the hard limit, followers that lag are dropped and everything is folded.
func (l *Log[T]) compact(always bool) {
	end := l.base + len(l.items)
	floor := end
	if l.hard == 0 || l.unfolded <= l.hard {
		for c := range l.cursors {
			if c.pos >= 0 && c.pos < floor {
				floor = c.pos
			}
		}
	} else {
		for c := range l.cursors {
			if c.pos >= 0 && c.pos < end {
				c.pos = -1
			}
		}
	}
	k := floor - l.base
	if k > 0 || always {
		l.fold.Fold(l.items[:k])
		l.items = append([]T(nil), l.items[k:]...)
		l.base = floor
		l.unfolded = 0
		for _, v := range l.items {
			l.unfolded += l.fold.Size(v)
		}
	}
	// Followers that lag keep what they have not read: fold again only
	// once that has doubled, so that a slow follower does not make every
	// Add fold.
	l.next = max(l.limit, 2*l.unfolded)
}

// Close ends the stream; it is idempotent.
func (l *Log[T]) Close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		close(l.notify)
	}
}

// Follow calls fn with every item from the start, in order (the folded
// head first), until the log is closed (nil), ctx ends (its error), or
// the follower fell behind (ErrBehind). fn runs on the caller's goroutine
// and may block; the writer never waits for it.
func (l *Log[T]) Follow(ctx context.Context, fn func(T)) error {
	c, head := l.register()
	return l.follow(ctx, c, head, fn)
}

// register adds a follower at the start: the folded head, then the items
// from l.base on.
func (l *Log[T]) register() (*cursor, []T) {
	c := &cursor{}
	l.mu.Lock()
	defer l.mu.Unlock()
	var head []T
	if l.fold != nil && l.unfolded > l.limit {
		// Fold what every follower has read, so that this one starts
		// from the head.
		l.compact(false)
	}
	if l.fold != nil && l.base > 0 {
		head = l.fold.Head()
	}
	c.pos = l.base
	l.cursors[c] = struct{}{}
	return c, head
}

// Reader is a follower registered before it reads: nothing from its
// position on is folded away before it gets it.
type Reader[T any] struct {
	l    *Log[T]
	c    *cursor
	head []T
}

// Reader registers a follower at the start of the log now; its Follow
// must be called (once), or the log keeps everything it has not read.
func (l *Log[T]) Reader() *Reader[T] {
	c, head := l.register()
	return &Reader[T]{l: l, c: c, head: head}
}

// Follow is Log.Follow from where the reader was registered.
func (r *Reader[T]) Follow(ctx context.Context, fn func(T)) error {
	return r.l.follow(ctx, r.c, r.head, fn)
}

func (l *Log[T]) follow(ctx context.Context, c *cursor, head []T, fn func(T)) error {
	defer func() {
		l.mu.Lock()
		delete(l.cursors, c)
		l.mu.Unlock()
	}()
	for _, v := range head {
		if err := ctx.Err(); err != nil {
			return err
		}
		fn(v)
	}
	for {
		l.mu.Lock()
		if c.pos < 0 {
			l.mu.Unlock()
			return ErrBehind
		}
		pending := l.items[c.pos-l.base:]
		c.pos += len(pending)
		closed, wait := l.closed, l.notify
		l.mu.Unlock()
		for _, v := range pending {
			if err := ctx.Err(); err != nil {
				return err
			}
			fn(v)
		}
		if len(pending) > 0 {
			continue
		}
		if closed {
			return nil
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Subscribe returns a channel with every item from the start, closed after
// the last one once the log is closed, or when ctx is done. The follower
// is registered before Subscribe returns: nothing added after it is
// folded away before the channel's reader gets it.
func (l *Log[T]) Subscribe(ctx context.Context) <-chan T {
	out := make(chan T)
	c, head := l.register()
	go func() {
		defer close(out)
		l.follow(ctx, c, head, func(v T) {
			select {
			case out <- v:
			case <-ctx.Done():
			}
		})
	}()
	return out
}

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
	hard     int       // unfolded bytes beyond which followers are dropped
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
// follower has read into f once they cost more than limit bytes, and
// ends a follower whose unread items cost more than 16 times limit
// (with ErrBehind). limit must be positive.
func NewCompacted[T any](f Folder[T], limit int) *Log[T] {
	l := New[T]()
	l.fold, l.limit, l.hard, l.next = f, limit, 16*limit, limit
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
	if l.unfolded <= l.hard {
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
	c := &cursor{}
	l.mu.Lock()
	var head []T
	if l.fold != nil && l.base > 0 {
		head = l.fold.Head()
	}
	c.pos = l.base
	l.cursors[c] = struct{}{}
	l.mu.Unlock()
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
// the last one once the log is closed, or when ctx is done.
func (l *Log[T]) Subscribe(ctx context.Context) <-chan T {
	out := make(chan T)
	go func() {
		defer close(out)
		l.Follow(ctx, func(v T) {
			select {
			case out <- v:
			case <-ctx.Done():
			}
		})
	}()
	return out
}

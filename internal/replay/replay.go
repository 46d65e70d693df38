// Package replay is an append-only stream that any number of followers
// read from its start, however late they come: a build's progress and
// events, shared by every caller that joins the build.
package replay

import (
	"context"
	"sync"
)

// Log holds the items of one stream. The zero value is not usable; call
// New.
type Log[T any] struct {
	mu     sync.Mutex
	items  []T
	closed bool
	notify chan struct{} // closed and replaced on every change
}

// New returns an open, empty Log.
func New[T any]() *Log[T] { return &Log[T]{notify: make(chan struct{})} }

// Add appends an item; adding after Close is ignored.
func (l *Log[T]) Add(v T) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.items = append(l.items, v)
	close(l.notify)
	l.notify = make(chan struct{})
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

// Follow calls fn with every item from the start, in order, until the log
// is closed (nil) or ctx ends (its error). fn runs on the caller's
// goroutine and may block; the writer never waits for it.
func (l *Log[T]) Follow(ctx context.Context, fn func(T)) error {
	for i := 0; ; {
		l.mu.Lock()
		pending := l.items[i:]
		closed, wait := l.closed, l.notify
		l.mu.Unlock()
		for _, v := range pending {
			if err := ctx.Err(); err != nil {
				return err
			}
			fn(v)
		}
		i += len(pending)
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

package ensure

import (
	"context"
	"sync"
)

// eventLog is the events of one build, replayable: every follower sees
// every event from the start, however late it comes.
type eventLog struct {
	mu     sync.Mutex
	events []Event
	closed bool
	notify chan struct{} // closed and replaced on every change
}

func newEventLog() *eventLog { return &eventLog{notify: make(chan struct{})} }

// add appends an event; adding after close is ignored.
func (l *eventLog) add(ev Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.events = append(l.events, ev)
	close(l.notify)
	l.notify = make(chan struct{})
}

// close ends the log; it is idempotent.
func (l *eventLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		close(l.notify)
	}
}

// follow calls fn with every event from the start until the log is closed
// (nil) or ctx ends (its error).
func (l *eventLog) follow(ctx context.Context, fn Sink) error {
	for i := 0; ; {
		l.mu.Lock()
		pending := l.events[i:]
		closed, wait := l.closed, l.notify
		l.mu.Unlock()
		for _, ev := range pending {
			if fn != nil {
				fn(ev)
			}
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

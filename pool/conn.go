package pool

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/ispec-dev/ispec/builder"
	"github.com/ispec-dev/ispec/pylock"
	"github.com/ispec-dev/ispec/spec"
)

// daemon is a connection to one BuildKit daemon (*builder.Builder).
type daemon interface {
	Build(ctx context.Context, img *spec.Image, opts builder.BuildOptions) (*builder.Result, error)
	ResolvePython(ctx context.Context, img *spec.Image, opts builder.ResolveOptions) ([]pylock.Pin, error)
	Ping(ctx context.Context) error
	Close() error
}

// dialFunc connects to the daemon of opts and checks that it answers.
type dialFunc func(ctx context.Context, opts builder.Options) (daemon, error)

// dialBuilder is the dialFunc of real daemons.
func dialBuilder(ctx context.Context, opts builder.Options) (daemon, error) {
	b, err := builder.New(ctx, opts)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// conn is one connection to a member's daemon, shared by the builds that
// use it. It is closed when it is no longer the member's current one and
// its last user is done: never under a running build.
type conn struct {
	d    daemon
	refs int // users, plus one while it is the member's current connection; member.mu
}

// member is one daemon: its current connection (none until the first
// build, and none after a failure: the next build connects again; an
// error is never kept), and its build slots.
type member struct {
	opts  builder.Options
	dial  dialFunc
	slots chan struct{} // nil: no limit

	connects singleflight.Group // one dial at a time; callers that come meanwhile share it
	onWait   func()             // nil, or told when a caller waits for a connect (tests)

	mu  sync.Mutex
	cur *conn
}

// acquire returns a connection to m's daemon that answers, in use until
// release: the current one when it answers its health check within
// health (checked outside any lock), else a new one.
func (m *member) acquire(ctx context.Context, health time.Duration) (*conn, error) {
	if c := m.current(); c != nil {
		hctx, cancel := context.WithTimeout(ctx, health)
		err := c.d.Ping(hctx)
		cancel()
		if err == nil {
			return c, nil
		}
		m.release(c)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// Not trusted any more; the builds that use it keep it until
		// they end.
		m.drop(c)
	}
	return m.connect(ctx)
}

// current returns m's current connection, in use, or nil.
func (m *member) current() *conn {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cur != nil {
		m.cur.refs++
	}
	return m.cur
}

// connect makes a new current connection, or waits for the one another
// caller is making, and returns it in use.
func (m *member) connect(ctx context.Context) (*conn, error) {
	for {
		ch := m.connects.DoChan("", func() (any, error) {
			m.mu.Lock()
			c := m.cur
			m.mu.Unlock()
			if c != nil {
				return c, nil // connected meanwhile
			}
			// Shared by every caller that waits for it: bounded by the
			// dial timeout, not by one caller's context.
			d, err := m.dial(context.WithoutCancel(ctx), m.opts)
			if err != nil {
				return nil, err
			}
			c = &conn{d: d, refs: 1}
			m.mu.Lock()
			m.cur = c
			m.mu.Unlock()
			return c, nil
		})
		if m.onWait != nil {
			m.onWait()
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case r := <-ch:
			if r.Err != nil {
				return nil, r.Err
			}
			c := r.Val.(*conn)
			m.mu.Lock()
			live := c.refs > 0
			if live {
				c.refs++
			}
			m.mu.Unlock()
			if live {
				return c, nil
			}
			// Dropped and closed before this caller could use it.
		}
	}
}

// release ends one use of c; the last use of a dropped connection closes
// it.
func (m *member) release(c *conn) {
	m.mu.Lock()
	c.refs--
	last := c.refs == 0
	m.mu.Unlock()
	if last {
		c.d.Close()
	}
}

// drop makes c no longer m's current connection (the next build connects
// again); it is closed after its last user.
func (m *member) drop(c *conn) {
	m.mu.Lock()
	if m.cur != c {
		m.mu.Unlock()
		return
	}
	m.cur = nil
	m.mu.Unlock()
	m.release(c)
}

// dropCurrent drops m's current connection, if any.
func (m *member) dropCurrent() {
	m.mu.Lock()
	c := m.cur
	m.mu.Unlock()
	if c != nil {
		m.drop(c)
	}
}

// Package pool builds on several BuildKit daemons: each build goes to the
// daemon that rendezvous hashing ranks first for the build's cache key
// (its base image, apt packages and platforms), so specs that share their
// lower layers land on the daemon whose cache already holds them. A daemon
// that does not answer its health check (ListWorkers) is skipped and the
// next in the ranking takes the build. Each daemon runs a bounded number
// of builds at once.
//
// A pool of one daemon is the connection manager of a single BuildKit: it
// connects on the first build, and again after a failure (an error is
// never kept, so a daemon that comes up late is used as soon as it
// answers). A connection is shared by the builds that use it and is never
// closed under one: a connection that failed its health check is replaced
// for the next builds and closed after its last user. Health checks run
// outside locks, and concurrent connects to one daemon share one dial.
package pool

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ispec-dev/ispec/builder"
	"github.com/ispec-dev/ispec/internal/clock"
	"github.com/ispec-dev/ispec/pylock"
	"github.com/ispec-dev/ispec/spec"
)

// Pool is an ensure.Builder over several daemons. It is safe for
// concurrent use.
type Pool struct {
	members []*member
	perD    int
	health  time.Duration
	clock   clock.Clock
	dial    dialFunc
	onWait  func() // tests: a caller waits for a connect (see member.onWait)
	reg     prometheus.Registerer
	builds  *prometheus.CounterVec
	busy    *prometheus.GaugeVec
}

// Option configures a Pool.
type Option func(*Pool) error

// WithMaxPerDaemon runs at most n builds at once on each daemon; more
// wait for a slot on the daemon their key ranks first.
//
// The default, 0, is no limit.
func WithMaxPerDaemon(n int) Option {
	return func(p *Pool) error {
		if n < 0 {
			return errors.New("max builds per daemon is negative")
		}
		p.perD = n
		return nil
	}
}

// WithHealthTimeout bounds a daemon's health check before each build, and
// a new connection's first check.
//
// The default is 3s.
func WithHealthTimeout(d time.Duration) Option {
	return func(p *Pool) error {
		if d <= 0 {
			return errors.New("health timeout must be positive")
		}
		p.health = d
		return nil
	}
}

// WithRegisterer registers the pool's metrics: ispec_buildkit_builds_total
// {daemon, result} and ispec_buildkit_builds_running{daemon}.
//
// The default registers none (they are still counted).
func WithRegisterer(r prometheus.Registerer) Option {
	return func(p *Pool) error {
		if r == nil {
			return errors.New("registerer is nil")
		}
		p.reg = r
		return nil
	}
}

// WithClock sets the clock Watch waits on.
//
// The default is the system clock.
func WithClock(c clock.Clock) Option {
	return func(p *Pool) error {
		if c == nil {
			return errors.New("clock is nil")
		}
		p.clock = c
		return nil
	}
}

// withDial replaces how daemons are connected to (tests).
func withDial(d dialFunc) Option {
	return func(p *Pool) error {
		p.dial = d
		return nil
	}
}

// withConnectWait has f called each time a caller starts waiting for a
// connection being made (tests).
func withConnectWait(f func()) Option {
	return func(p *Pool) error {
		p.onWait = f
		return nil
	}
}

// New returns a pool over the daemons at addrs (each as
// builder.Options.Addr); base holds the options they share. It does not
// connect.
func New(addrs []string, base builder.Options, opts ...Option) (*Pool, error) {
	p := &Pool{health: 3 * time.Second, clock: clock.Real{}, dial: dialBuilder}
	for _, opt := range opts {
		if err := opt(p); err != nil {
			return nil, fmt.Errorf("pool: %w", err)
		}
	}
	seen := map[string]bool{}
	for _, a := range addrs {
		a = strings.TrimSpace(a)
		if a == "" || seen[a] {
			continue
		}
		seen[a] = true
		o := base
		o.Addr = a
		o.DialTimeout = p.health
		m := &member{opts: o, dial: p.dial, onWait: p.onWait}
		if p.perD > 0 {
			m.slots = make(chan struct{}, p.perD)
		}
		p.members = append(p.members, m)
	}
	if len(p.members) == 0 {
		return nil, errors.New("pool: no BuildKit address")
	}
	p.builds = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ispec_buildkit_builds_total", Help: "Builds by BuildKit daemon and result: ok, failed, unavailable.",
	}, []string{"daemon", "result"})
	p.busy = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "ispec_buildkit_builds_running", Help: "Builds running on each BuildKit daemon.",
	}, []string{"daemon"})
	if p.reg != nil {
		for _, c := range []prometheus.Collector{p.builds, p.busy} {
			if err := p.reg.Register(c); err != nil {
				return nil, fmt.Errorf("pool: %w", err)
			}
		}
	}
	return p, nil
}

// Addrs returns the daemons' addresses in the order given.
func (p *Pool) Addrs() []string {
	out := make([]string, len(p.members))
	for i, m := range p.members {
		out[i] = m.opts.Addr
	}
	return out
}

// Key is what places a build: its base (a nested spec's parent tag), its
// apt packages and its platforms, the inputs of its lowest layers.
func Key(img *spec.Image) string {
	base := img.Base
	if img.Parent != nil {
		base = img.Parent.Identity.Ref
	}
	var apt, plat []string
	if img.Spec != nil {
		apt, plat = append(apt, img.Spec.AptPackages...), append(plat, img.Spec.Platform...)
	}
	sort.Strings(apt)
	sort.Strings(plat)
	return base + "\x00" + strings.Join(apt, ",") + "\x00" + strings.Join(plat, ",")
}

// Rank returns the daemons' addresses for key, best first (rendezvous
// hashing: adding or removing a daemon moves only the keys it ranks
// first).
func (p *Pool) Rank(key string) []string {
	ms := p.rank(key)
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.opts.Addr
	}
	return out
}

func (p *Pool) rank(key string) []*member {
	type scored struct {
		m *member
		s uint64
	}
	ss := make([]scored, len(p.members))
	for i, m := range p.members {
		h := sha256.Sum256([]byte(key + "\x00" + m.opts.Addr))
		ss[i] = scored{m, binary.BigEndian.Uint64(h[:8])}
	}
	sort.Slice(ss, func(i, j int) bool { return ss[i].s > ss[j].s })
	out := make([]*member, len(ss))
	for i, s := range ss {
		out[i] = s.m
	}
	return out
}

// Build implements ensure.Builder: on the first daemon in the key's
// ranking that answers its health check. When none does, the error is the
// last daemon's *builder.UnavailableError.
func (p *Pool) Build(ctx context.Context, img *spec.Image, opts builder.BuildOptions) (*builder.Result, error) {
	var res *builder.Result
	err := p.on(ctx, img, func(d daemon) (err error) {
		res, err = d.Build(ctx, img, opts)
		return err
	})
	return res, err
}

// ResolvePython resolves img's Python requirements for one platform (see
// builder.Builder.ResolvePython) on the daemon Build would build img on,
// within its slots, so that a resolution warms the cache of the build
// that follows.
func (p *Pool) ResolvePython(ctx context.Context, img *spec.Image, opts builder.ResolveOptions) ([]pylock.Pin, error) {
	var pins []pylock.Pin
	err := p.on(ctx, img, func(d daemon) (err error) {
		pins, err = d.ResolvePython(ctx, img, opts)
		return err
	})
	return pins, err
}

// on runs fn on the first daemon in img's ranking that answers its health
// check.
func (p *Pool) on(ctx context.Context, img *spec.Image, fn func(daemon) error) error {
	var errs []error
	for _, m := range p.rank(Key(img)) {
		c, err := m.acquire(ctx, p.health)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			p.builds.WithLabelValues(m.opts.Addr, "unavailable").Inc()
			errs = append(errs, err)
			continue
		}
		return p.runOn(ctx, m, c, fn)
	}
	if len(errs) == 1 {
		// A pool of one: its daemon's own error.
		return errs[0]
	}
	var last *builder.UnavailableError
	for _, e := range errs {
		errors.As(e, &last)
	}
	if last != nil {
		return &builder.UnavailableError{Addr: strings.Join(p.Addrs(), ","), Err: errors.Join(errs...)}
	}
	return errors.Join(errs...)
}

// runOn runs fn on c, a connection to m in use, in one of m's slots, and
// releases it.
func (p *Pool) runOn(ctx context.Context, m *member, c *conn, fn func(daemon) error) error {
	defer m.release(c)
	if m.slots != nil {
		select {
		case m.slots <- struct{}{}:
		case <-ctx.Done():
			return fmt.Errorf("waiting for a slot on buildkit %s: %w", m.opts.Addr, ctx.Err())
		}
	}
	p.busy.WithLabelValues(m.opts.Addr).Inc()
	err := fn(c.d)
	p.busy.WithLabelValues(m.opts.Addr).Dec()
	if m.slots != nil {
		<-m.slots
	}
	result := "ok"
	if err != nil {
		result = "failed"
		var down *builder.UnavailableError
		if errors.As(err, &down) {
			result = "unavailable"
			m.drop(c)
		}
	}
	p.builds.WithLabelValues(m.opts.Addr, result).Inc()
	return err
}

// Check reports whether a daemon answers (connecting to it when it is
// not yet): nil when one does, else an *builder.UnavailableError.
func (p *Pool) Check(ctx context.Context) error {
	var errs []error
	for _, m := range p.members {
		c, err := m.acquire(ctx, p.health)
		if err == nil {
			m.release(c)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		errs = append(errs, err)
	}
	return &builder.UnavailableError{Addr: strings.Join(p.Addrs(), ","), Err: errors.Join(errs...)}
}

// Watch checks the daemons every interval until ctx ends, and calls fn
// with Check's answer first and each time it changes between nil and an
// error.
func (p *Pool) Watch(ctx context.Context, every time.Duration, fn func(error)) {
	first, up := true, false
	for {
		err := p.Check(ctx)
		if ctx.Err() != nil {
			return
		}
		if first || up != (err == nil) {
			fn(err)
		}
		first, up = false, err == nil
		t := p.clock.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C():
		}
	}
}

// Close closes every connection that no build uses; the others close
// when their builds end.
func (p *Pool) Close() error {
	for _, m := range p.members {
		m.dropCurrent()
	}
	return nil
}

// Package pool builds on several BuildKit daemons: each build goes to the
// daemon that rendezvous hashing ranks first for the build's cache key
// (its base image, apt packages and platforms), so specs that share their
// lower layers land on the daemon whose cache already holds them. A daemon
// that does not answer its health check (ListWorkers) is skipped and the
// next in the ranking takes the build. Each daemon runs a bounded number
// of builds at once.
package pool

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ispec-dev/ispec/builder"
	"github.com/ispec-dev/ispec/spec"
)

// Pool is an ensure.Builder over several daemons. It is safe for
// concurrent use.
type Pool struct {
	members []*member
	perD    int
	health  time.Duration
	reg     prometheus.Registerer
	builds  *prometheus.CounterVec
	busy    *prometheus.GaugeVec
}

// member is one daemon, connected on its first build.
type member struct {
	opts  builder.Options
	slots chan struct{} // nil: no limit

	mu sync.Mutex
	b  *builder.Builder
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

// WithHealthTimeout bounds a daemon's health check before each build.
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

// New returns a pool over the daemons at addrs (each as
// builder.Options.Addr); base holds the options they share. It does not
// connect.
func New(addrs []string, base builder.Options, opts ...Option) (*Pool, error) {
	p := &Pool{health: 3 * time.Second}
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
		m := &member{opts: o}
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
	var errs []error
	for _, m := range p.rank(Key(img)) {
		b, err := p.healthy(ctx, m)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			p.builds.WithLabelValues(m.opts.Addr, "unavailable").Inc()
			errs = append(errs, err)
			continue
		}
		if m.slots != nil {
			select {
			case m.slots <- struct{}{}:
			case <-ctx.Done():
				return nil, fmt.Errorf("waiting for a slot on buildkit %s: %w", m.opts.Addr, ctx.Err())
			}
		}
		p.busy.WithLabelValues(m.opts.Addr).Inc()
		res, err := b.Build(ctx, img, opts)
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
				m.drop()
			}
		}
		p.builds.WithLabelValues(m.opts.Addr, result).Inc()
		return res, err
	}
	var last *builder.UnavailableError
	for _, e := range errs {
		errors.As(e, &last)
	}
	if last != nil {
		return nil, &builder.UnavailableError{Addr: strings.Join(p.Addrs(), ","), Err: errors.Join(errs...)}
	}
	return nil, errors.Join(errs...)
}

// healthy connects to m (once) and checks that it answers.
func (p *Pool) healthy(ctx context.Context, m *member) (*builder.Builder, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.b == nil {
		o := m.opts
		o.DialTimeout = p.health
		b, err := builder.New(ctx, o)
		if err != nil {
			return nil, err
		}
		m.b = b
		return b, nil
	}
	hctx, cancel := context.WithTimeout(ctx, p.health)
	defer cancel()
	if err := m.b.Ping(hctx); err != nil {
		m.b.Close()
		m.b = nil
		return nil, err
	}
	return m.b, nil
}

// drop forgets m's connection, so the next build reconnects.
func (m *member) drop() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.b != nil {
		m.b.Close()
		m.b = nil
	}
}

// Close closes every connection.
func (p *Pool) Close() error {
	for _, m := range p.members {
		m.drop()
	}
	return nil
}

package coord

import (
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/ispec-dev/ispec/internal/clock"
)

// Option configures a Redis coordinator.
type Option func(*Redis) error

// WithLeaseTTL sets how long a lease lives without renewal; it is renewed
// every third of it.
//
// The default is 30s.
func WithLeaseTTL(d time.Duration) Option {
	return func(r *Redis) error {
		if d < 100*time.Millisecond {
			return errors.New("lease TTL must be at least 100ms")
		}
		r.ttl = d
		return nil
	}
}

// WithPrefix sets the prefix of every key (replicas that share builds
// share it).
//
// The default is "ispec:".
func WithPrefix(p string) Option {
	return func(r *Redis) error {
		if strings.TrimSpace(p) == "" {
			return errors.New("key prefix is empty")
		}
		r.prefix = p
		return nil
	}
}

// WithOwner names this replica in lease owner tokens (followed by a
// random suffix per lease).
//
// The default is the host name and process id.
func WithOwner(name string) Option {
	return func(r *Redis) error {
		if strings.TrimSpace(name) == "" {
			return errors.New("owner name is empty")
		}
		r.owner = name
		return nil
	}
}

// WithStreamTTL sets how long a build's event stream is kept after its
// last event; it should exceed the failure TTL, so that a remembered
// failure replays its events.
//
// The default is one hour.
func WithStreamTTL(d time.Duration) Option {
	return func(r *Redis) error {
		if d <= 0 {
			return errors.New("stream TTL must be positive")
		}
		r.streamTTL = d
		return nil
	}
}

// WithStreamMax trims a build's event stream to about n events (progress
// of a long build is dropped from its start first).
//
// The default is 10000.
func WithStreamMax(n int64) Option {
	return func(r *Redis) error {
		if n < 10 {
			return errors.New("stream max must be at least 10")
		}
		r.streamMax = n
		return nil
	}
}

// WithPoll sets how often a caller waiting for a lease tries to take it.
//
// The default is 100ms.
func WithPoll(d time.Duration) Option {
	return func(r *Redis) error {
		if d <= 0 {
			return errors.New("poll interval must be positive")
		}
		r.poll = d
		return nil
	}
}

// WithLogger sets where degraded coordination and lost leases are
// logged.
//
// The default discards logs.
func WithLogger(l *slog.Logger) Option {
	return func(r *Redis) error {
		if l == nil {
			return errors.New("logger is nil")
		}
		r.log = l
		return nil
	}
}

// WithClock sets the clock leases are renewed and expired by (tests pass
// a fake one).
//
// The default is the system clock.
func WithClock(c clock.Clock) Option {
	return func(r *Redis) error {
		if c == nil {
			return errors.New("clock is nil")
		}
		r.clock = c
		return nil
	}
}

package ensure

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/ispec-dev/ispec/builder"
	"github.com/ispec-dev/ispec/internal/clock"
)

// Option configures a Pipeline.
type Option func(*Pipeline) error

// WithLookup sets how tags are looked up (a *cache.Remote, or a
// *cache.Cached in front of one). Required.
func WithLookup(l Lookup) Option {
	return func(p *Pipeline) error {
		if l == nil {
			return errors.New("lookup is nil")
		}
		p.lookup = l
		return nil
	}
}

// WithBuilder sets what builds and pushes images. Required for builds; a
// pipeline without one answers lookups only and fails builds with
// ErrUnavailable.
func WithBuilder(b Builder) Option {
	return func(p *Pipeline) error {
		if b == nil {
			return errors.New("builder is nil")
		}
		p.builder = b
		return nil
	}
}

// WithLocker sets the per-tag build lock.
//
// The default is an in-process MemLocker.
func WithLocker(l Locker) Option {
	return func(p *Pipeline) error {
		if l == nil {
			return errors.New("locker is nil")
		}
		p.locker = l
		return nil
	}
}

// WithRecorder sets where built images are recorded (the local index).
//
// The default records nothing.
func WithRecorder(r Recorder) Option {
	return func(p *Pipeline) error {
		if r == nil {
			return errors.New("recorder is nil")
		}
		p.recorder = r
		return nil
	}
}

// WithContext sets the context builds run under. A build belongs to every
// caller that waits for it, so a caller that goes away does not cancel it;
// ending this context does (the CLI passes its interrupt context, a server
// a context it cancels only when it must stop at once).
//
// The default is context.Background().
func WithContext(ctx context.Context) Option {
	return func(p *Pipeline) error {
		if ctx == nil {
			return errors.New("context is nil")
		}
		p.base = ctx
		return nil
	}
}

// WithBuildTimeout ends a build that runs longer than d, lock wait
// included.
//
// The default, 0, is no timeout.
func WithBuildTimeout(d time.Duration) Option {
	return func(p *Pipeline) error {
		if d < 0 {
			return errors.New("build timeout is negative")
		}
		p.timeout = d
		return nil
	}
}

// WithFailureTTL remembers a failed build for d: callers of the same tag
// within d get its events and error (a *RememberedError) without building
// again. Only failures that would happen again are remembered: a failed
// step and an invalid spec (see Remembered); a forced build (Request.Force)
// ignores the memory.
//
// The default, 0, forgets a failure at once.
func WithFailureTTL(d time.Duration) Option {
	return func(p *Pipeline) error {
		if d < 0 {
			return errors.New("failure TTL is negative")
		}
		p.failureTTL = d
		return nil
	}
}

// WithMaxBuilds runs at most n builds at once; more wait in a queue.
//
// The default, 0, is no limit.
func WithMaxBuilds(n int) Option {
	return func(p *Pipeline) error {
		if n < 0 {
			return errors.New("max builds is negative")
		}
		p.maxBuilds = n
		return nil
	}
}

// WithMaxQueue lets at most n builds wait for a slot when WithMaxBuilds
// are running; a build past that fails at once with ErrBusy, and nothing
// is lost (asking again later may succeed). Joining a running build is
// always allowed.
//
// The default is no limit.
func WithMaxQueue(n int) Option {
	return func(p *Pipeline) error {
		if n < 0 {
			return errors.New("max queue is negative")
		}
		p.maxQueue = n
		return nil
	}
}

// WithPipNetrc sets a netrc file with private index credentials, handed to
// pip as a BuildKit secret in every build.
//
// The default is none.
func WithPipNetrc(netrc []byte) Option {
	return func(p *Pipeline) error {
		p.netrc = netrc
		return nil
	}
}

// WithHistory keeps the last n finished builds for Builds and Watch.
//
// The default is 100.
func WithHistory(n int) Option {
	return func(p *Pipeline) error {
		if n < 0 {
			return errors.New("history is negative")
		}
		p.history = n
		return nil
	}
}

// WithRegistryCache sets when builds import and export BuildKit's cache in
// a registry (builder.WithRegistryCache), and where: cacheRegistry, or
// next to each image when empty.
//
// The default is builder.CacheAuto next to each image: builds that push
// use it, Export builds do not.
func WithRegistryCache(mode builder.CacheMode, cacheRegistry string) Option {
	return func(p *Pipeline) error {
		p.cacheMode, p.cacheRegistry = mode, cacheRegistry
		return nil
	}
}

// WithLogger sets where the pipeline reports what no caller can be told:
// a build that panicked, with its stack.
//
// The default discards logs.
func WithLogger(l *slog.Logger) Option {
	return func(p *Pipeline) error {
		if l == nil {
			return errors.New("logger is nil")
		}
		p.log = l
		return nil
	}
}

// WithProgressLimit sets how many bytes of a build's logs a caller that
// joins it late is replayed: the last ones, after a line saying how many
// were dropped, with the latest state of every step. Callers that follow
// from the start get every log.
//
// The default is builder.DefaultProgressLogLimit (1 MiB).
func WithProgressLimit(n int) Option {
	return func(p *Pipeline) error {
		if n < 0 {
			return errors.New("progress limit must not be negative")
		}
		p.progressLimit = n
		return nil
	}
}

// WithClock sets the clock the pipeline reads and waits on: when a
// remembered failure expires, how long a follower that lost its backend
// waits before it follows again.
//
// The default is the system clock.
func WithClock(c clock.Clock) Option {
	return func(p *Pipeline) error {
		if c == nil {
			return errors.New("clock is nil")
		}
		p.clock = c
		return nil
	}
}

package server

import (
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ispec-dev/ispec/blobstore"
	"github.com/ispec-dev/ispec/ensure"
	"github.com/ispec-dev/ispec/locker"
	"github.com/ispec-dev/ispec/spec"
)

// Option configures a Server.
type Option func(*Server) error

// WithSpecOptions sets the configuration specs are loaded with (default
// registry and base images, secret files).
//
// The default is the zero spec.Options.
func WithSpecOptions(o spec.Options) Option {
	return func(s *Server) error { s.specOpts = o; return nil }
}

// WithAllowedRegistries lets the server push only to these registries
// (host[:port], or host[:port]/path prefixes); a build for any other gets
// PERMISSION_DENIED before any work.
//
// The default, none, allows every registry.
func WithAllowedRegistries(regs ...string) Option {
	return func(s *Server) error {
		for _, r := range regs {
			r = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(r)), "/")
			if r == "" || strings.Contains(r, "://") {
				return errors.New("allowed registry " + r + ": expected host[:port][/path]")
			}
			s.allowed = append(s.allowed, r)
		}
		return nil
	}
}

// WithAllowedLookupRegistries lets the server read only from these
// registries (host[:port], or host[:port]/path prefixes), besides those
// WithAllowedRegistries allows: a Lookup of a tag elsewhere, or a build
// whose image, base spec's image or base image is elsewhere, gets
// PERMISSION_DENIED, and no connection is made.
//
// The default, none, allows every registry.
func WithAllowedLookupRegistries(regs ...string) Option {
	return func(s *Server) error {
		l, err := parseRegistries(regs)
		if err != nil {
			return err
		}
		s.lookups = append(s.lookups, l...)
		return nil
	}
}

// WithLocker answers Lock calls with l (built on the server's registry
// client, BuildKit and pip netrc).
//
// The default, none, answers Lock with UNIMPLEMENTED.
func WithLocker(l *locker.Locker) Option {
	return func(s *Server) error {
		if l == nil {
			return errors.New("locker is nil")
		}
		s.locker = l
		return nil
	}
}

// WithMaxLocks bounds the Lock calls that resolve at once (each runs pip
// on BuildKit); a call past it gets RESOURCE_EXHAUSTED at once, and
// nothing is resolved.
//
// The default is 4.
func WithMaxLocks(n int) Option {
	return func(s *Server) error {
		if n <= 0 {
			return errors.New("max locks must be positive")
		}
		s.lockSlots = make(chan struct{}, n)
		return nil
	}
}

// WithLimits bounds each upload.
//
// The default is ensure.DefaultLimits().
func WithLimits(l ensure.Limits) Option {
	return func(s *Server) error {
		if l.MaxFiles < 0 || l.MaxBytes < 0 || l.MaxPath < 0 {
			return errors.New("limits must not be negative")
		}
		s.limits = l
		return nil
	}
}

// WithUploadDir sets the folder under which the server keeps its own
// folder (0700): its blob store and the uploads it materializes while
// their images are resolved and built. It is resolved to an absolute path
// without symlinks at start, so that its spelling never changes an
// identity.
//
// The default is the system's temporary folder.
func WithUploadDir(dir string) Option {
	return func(s *Server) error { s.uploadDir = dir; return nil }
}

// WithLogger sets the structured log.
//
// The default discards logs.
func WithLogger(l *slog.Logger) Option {
	return func(s *Server) error {
		if l == nil {
			return errors.New("logger is nil")
		}
		s.log = l
		return nil
	}
}

// WithRegisterer registers the server's metrics.
//
// The default registers none.
func WithRegisterer(r prometheus.Registerer) Option {
	return func(s *Server) error {
		if r == nil {
			return errors.New("registerer is nil")
		}
		s.reg = r
		return nil
	}
}

// WithUploadCacheSize bounds the bytes of uploaded blobs the server keeps
// (least recently used ones are removed past it; blobs a build uses are
// kept until it ends). A blob larger than it is refused.
//
// The default is 4 GiB.
func WithUploadCacheSize(n int64) Option {
	return func(s *Server) error {
		if n <= 0 {
			return errors.New("upload cache size must be positive")
		}
		s.blobOpts = append(s.blobOpts, blobstore.WithMaxBytes(n))
		return nil
	}
}

// WithSendTimeout sets how long one event may wait for its caller to read
// it: a caller that reads nothing for that long has its stream ended
// (DEADLINE_EXCEEDED); the build goes on for the others.
//
// The default is one minute.
func WithSendTimeout(d time.Duration) Option {
	return func(s *Server) error {
		if d <= 0 {
			return errors.New("send timeout must be positive")
		}
		s.sendTimeout = d
		return nil
	}
}

// WithUploadInFlight bounds the bytes of blobs being received at once
// (their declared sizes): more writers wait.
//
// The default is 1 GiB.
func WithUploadInFlight(n int64) Option {
	return func(s *Server) error {
		if n <= 0 {
			return errors.New("upload bytes in flight must be positive")
		}
		s.blobOpts = append(s.blobOpts, blobstore.WithMaxInFlight(n))
		return nil
	}
}

// WithMaxConcurrentStreams sets how many calls one client connection may
// have open at once (gRPC's MaxConcurrentStreams).
//
// The default is 1024.
func WithMaxConcurrentStreams(n uint32) Option {
	return func(s *Server) error {
		if n == 0 {
			return errors.New("max concurrent streams must be positive")
		}
		s.maxStreams = n
		return nil
	}
}

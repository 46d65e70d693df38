package ensure

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ispec-dev/ispec/builder"
	"github.com/ispec-dev/ispec/cache"
	"github.com/ispec-dev/ispec/spec"
)

// Sentinels for errors.Is. Errors of the packages below the pipeline
// (spec, cache, builder) are classified by their types; these are for
// errors the pipeline and its adapters make themselves.
var (
	// ErrInvalid: the spec or the request is at fault (spec.ErrInvalid).
	ErrInvalid = spec.ErrInvalid
	// ErrUnavailable: a registry or BuildKit could not be used.
	ErrUnavailable = errors.New("unavailable")
	// ErrBusy: the pipeline runs as many builds as it may and its queue is
	// full; asking again later may succeed.
	ErrBusy = errors.New("too many builds")
	// ErrDenied: the caller may not build this image (for example its
	// registry is not allowed).
	ErrDenied = errors.New("permission denied")
	// ErrNoBuild: no build of the tag runs to join (Pipeline.Join).
	ErrNoBuild = errors.New("no build of this tag runs")
	// ErrNotFound: no build has the id asked for.
	ErrNotFound = errors.New("no such build")
	// ErrNoRegistry: the spec's image has no registry to look up or push
	// to. It matches ErrInvalid too.
	ErrNoRegistry = fmt.Errorf("%w: no registry", spec.ErrInvalid)
)

// ClassOf classifies err: an error with an ErrorClass() method (a remote
// failure) says its class itself; nil is ClassInternal; callers check nil first.
// An error none of the packages below classify (BuildKit's own failures
// outside the recipe's steps) is ClassFailed, as a failed step is.
func ClassOf(err error) Class {
	var (
		unknown  *cache.UnknownError
		bkDown   *builder.UnavailableError
		push     *builder.PushError
		platform *builder.PlatformError
		step     *builder.StepError
		base     *builder.BaseError
	)
	var classed interface{ ErrorClass() Class }
	switch {
	case err == nil:
		return ClassInternal
	case errors.As(err, &classed):
		return classed.ErrorClass()
	case errors.Is(err, ErrInvalid):
		return ClassInvalid
	case errors.Is(err, ErrDenied):
		return ClassDenied
	case errors.Is(err, ErrBusy):
		return ClassBusy
	case errors.Is(err, ErrNotFound):
		return ClassNotFound
	case errors.As(err, &step):
		return ClassFailed
	case errors.As(err, &base):
		// A base the registry does not have is the spec's fault, as
		// `lock` says too; a registry that cannot say is unavailable.
		if base.Absent {
			return ClassInvalid
		}
		return ClassUnavailable
	case errors.Is(err, ErrLeaseLost):
		return ClassUnavailable
	case errors.Is(err, context.Canceled):
		return ClassCanceled
	case errors.Is(err, context.DeadlineExceeded):
		return ClassTimeout
	case errors.Is(err, ErrUnavailable), errors.As(err, &unknown), errors.As(err, &bkDown),
		errors.As(err, &push), errors.As(err, &platform):
		return ClassUnavailable
	}
	return ClassFailed
}

// RememberedError is a failure replayed from memory: a build of the same
// tag failed at Since (in this process or on another replica), and a
// caller within the failure TTL (WithFailureTTL) gets its error without
// building again. A forced build tries again at once.
type RememberedError struct {
	// Err is the build's failure.
	Err error
	// Since is when it failed.
	Since time.Time
}

// Error implements error.
func (e *RememberedError) Error() string {
	return fmt.Sprintf("%v (a failure remembered since %s; --force builds again)", e.Err, e.Since.UTC().Format(time.RFC3339))
}

// Unwrap returns the failure.
func (e *RememberedError) Unwrap() error { return e.Err }

// Remembered reports whether a build that failed with err is remembered
// for the failure TTL: only a failed build step and an invalid spec are,
// since trying again gives the same answer. A cancellation, a lost lease,
// an unavailable BuildKit or registry and a timeout are not: the next
// caller tries again. An error with a Remembered() method (a failure
// another replica published) says so itself.
func Remembered(err error) bool {
	var (
		self interface{ Remembered() bool }
		step *builder.StepError
	)
	switch {
	case err == nil:
		return false
	case errors.As(err, &self):
		return self.Remembered()
	case errors.As(err, &step):
		return true
	}
	return ClassOf(err) == ClassInvalid
}

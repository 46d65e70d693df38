package ensure

import (
	"context"
	"errors"
	"time"
)

// ErrLeaseLost: the tag's lease ended while its build ran (it could not
// be renewed before its validity ended, or another owner has it); the
// build stopped before it pushed. It is never remembered as a failure:
// the next caller tries again.
var ErrLeaseLost = errors.New("build lease lost")

// Lease describes a tag's build lock as a shared Locker holds it.
type Lease struct {
	// Fence is the tag's fencing number: it grows by one each time the
	// lease is taken, so a stale owner (one whose lease another has taken
	// since) is told apart in events, logs and build records.
	Fence int64
	// Owner names the holder (its replica and a random token).
	Owner string
	// Confirm is the check right before a push: it tells whether the
	// lease is still this owner's under its fence (or under a newer one
	// this owner took again after the backend lost the lease before it
	// expired) and extends it. It returns the fence the push happens
	// under, or an error wrapping ErrLeaseLost: the build must not push.
	// Nil: the Locker cannot check (the push goes on).
	Confirm func(ctx context.Context) (fence int64, err error)
}

type leaseKey struct{}

// ContextWithLease returns ctx carrying l: a Locker returns its held
// context so, and the pipeline records the fence with the build.
func ContextWithLease(ctx context.Context, l Lease) context.Context {
	return context.WithValue(ctx, leaseKey{}, l)
}

// LeaseFrom returns the lease a held context carries; false when its
// Locker has none (in-process and file locks).
func LeaseFrom(ctx context.Context) (Lease, bool) {
	l, ok := ctx.Value(leaseKey{}).(Lease)
	return l, ok
}

// Exchange shares builds between server replicas: the replica that holds
// a tag's lease publishes its build's events, and callers on the other
// replicas follow them from the start and get the same result. It also
// shares the memory of failed builds (WithFailureTTL). An Exchange that
// cannot reach its backend fails soft: publishing drops events, and the
// pipeline falls back to its lock and the registry re-check.
type Exchange interface {
	// Publish starts the shared record of build id of ref, which this
	// process runs under the lease l.
	Publish(ref, id string, l Lease) Publication
	// Follow calls fn with the events of the build of ref that runs
	// elsewhere, from its start, until it ends: its result (Outcome
	// built) or its error. When that build is abandoned and another
	// starts, Follow goes on with the new one. It returns ctx's error when
	// ctx ends first.
	Follow(ctx context.Context, ref string, fn Sink) (*Result, error)
	// Failure replays a failure of ref remembered by any replica within
	// its failure TTL to fn and returns its error; nil when there is none.
	Failure(ctx context.Context, ref string, fn Sink) error
}

// Publication is one build's shared record.
type Publication interface {
	// Add appends an event; it does not block for the backend.
	Add(ev Event)
	// Finish ends the record with the build's result or error; an error
	// is remembered for failureTTL (0: not at all).
	Finish(res *Result, err error, failureTTL time.Duration)
}

// WithExchange shares builds and failures with other replicas (see
// Exchange); the Locker should be the same backend's, so that a caller
// that must wait for a tag's lease follows the build that holds it.
//
// The default shares nothing: joins happen within the process.
func WithExchange(x Exchange) Option {
	return func(p *Pipeline) error {
		if x == nil {
			return errors.New("exchange is nil")
		}
		p.exchange = x
		return nil
	}
}

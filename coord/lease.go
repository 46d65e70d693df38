package coord

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ispec-dev/ispec/ensure"
	"github.com/ispec-dev/ispec/internal/randid"
)

// driftFactor is the share of the TTL a lease's validity gives up for
// the clock drift between this process and Redis (redsync's default).
const driftFactor = 0.01

// Lock implements ensure.Locker with a lease in Redis. The held context
// carries the lease (ensure.LeaseFrom) and ends, with ensure.ErrLeaseLost
// as its cause, when another owner has the lease or when it could not be
// renewed before its validity ended. When Redis cannot be reached it
// takes an in-process lock instead.
func (r *Redis) Lock(ctx context.Context, ref string, wait func(holder string)) (context.Context, func() error, error) {
	key, fkey := r.key("lease", ref), r.key("fence", ref)
	token := r.owner + "/" + randid.New()
	waited := false
	onceWait := func(holder string) {
		if !waited && wait != nil {
			waited = true
			wait(holder)
		}
	}
	for {
		start := r.clock.Now()
		fence, err := r.take(ctx, key, fkey, token)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, fmt.Errorf("locking %s: %w", ref, ctx.Err())
			}
			r.unreachable(err)
			return r.mem.Lock(ctx, ref, onceWait)
		}
		r.reached()
		if fence > 0 {
			return r.hold(ctx, ref, key, fkey, token, fence, start)
		}
		if !waited {
			holder, _ := r.c.Get(ctx, key).Result()
			if holder == "" {
				continue // released meanwhile
			}
			onceWait("lease owner " + holder)
		}
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("locking %s: %w", ref, ctx.Err())
		case <-time.After(r.poll):
		}
	}
}

// take runs takeScript: the new fence, or 0 when another owner holds the
// lease.
func (r *Redis) take(ctx context.Context, key, fkey, token string) (int64, error) {
	return takeScript.Run(ctx, r.c, []string{key, fkey}, token, r.ttl.Milliseconds(), r.clock.Now().UnixMilli()).Int64()
}

// validity is how long a lease set or extended by a call that started at
// start may be taken as held: its TTL from the start, less the clock
// drift, as redsync computes it (the TTL minus the call's time minus the
// drift, from the reply).
func (r *Redis) validity(start time.Time) time.Time {
	return start.Add(r.ttl - time.Duration(float64(r.ttl)*driftFactor) - 2*time.Millisecond)
}

// lease is one taken lease while its build runs.
type lease struct {
	r              *Redis
	ref, key, fkey string
	token          string
	lose           context.CancelCauseFunc
	held           context.Context
	calls          sync.Mutex // one renewal or confirmation at a time
	mu             sync.Mutex
	fence          int64
	until          time.Time // the validity deadline
}

// hold renews a lease taken until it is released or lost.
func (r *Redis) hold(ctx context.Context, ref, key, fkey, token string, fence int64, start time.Time) (context.Context, func() error, error) {
	held, lose := context.WithCancelCause(ctx)
	l := &lease{r: r, ref: ref, key: key, fkey: fkey, token: token, lose: lose, fence: fence, until: r.validity(start)}
	l.held = ensure.ContextWithLease(held, ensure.Lease{Fence: fence, Owner: token, Confirm: l.confirm})
	done := make(chan struct{})
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		l.renew(done)
	}()
	var once sync.Once
	release := func() error {
		var err error
		once.Do(func() {
			close(done)
			<-renewed
			rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			err = releaseScript.Run(rctx, r.c, []string{key}, token).Err()
			lose(nil)
			if err != nil {
				r.unreachable(err)
				err = fmt.Errorf("releasing the lease of %s: %w", ref, err)
			}
		})
		return err
	}
	return l.held, release, nil
}

// renew extends the lease every third of its TTL (every tenth after a
// renewal failed) until done is closed or the held context ends; the
// lease is lost at its validity deadline when no renewal succeeded by
// then.
func (l *lease) renew(done <-chan struct{}) {
	r := l.r
	failed := false
	for {
		every := r.ttl / 3
		if failed {
			every = r.ttl / 10
		}
		now := r.clock.Now()
		l.mu.Lock()
		left := l.until.Sub(now)
		l.mu.Unlock()
		if left <= 0 {
			l.expired()
			return
		}
		t := r.clock.NewTimer(min(every, left))
		select {
		case <-done:
			t.Stop()
			return
		case <-l.held.Done():
			t.Stop()
			return
		case <-t.C():
		}
		ok, err := l.extend(renewScript, 3)
		switch {
		case err != nil && errors.Is(err, ensure.ErrLeaseLost):
			l.lose(err)
			return
		case err != nil:
			if !failed {
				r.log.Warn("build lease not renewed: Redis did not answer; the lease ends at its validity deadline unless a renewal succeeds",
					"ref", l.ref, "fence", l.fenceNow(), "error", err)
			}
			failed = true
		case ok:
			failed = false
		}
	}
}

// expired ends the lease at its validity deadline.
func (l *lease) expired() {
	err := fmt.Errorf("%w: the lease of %s (fence %d) could not be renewed before its validity ended", ensure.ErrLeaseLost, l.ref, l.fenceNow())
	l.r.log.Warn("build lease lost: Redis did not answer renewals before the lease's validity ended; stopping the build before it pushes",
		"ref", l.ref, "fence", l.fenceNow(), "owner", l.token)
	l.lose(err)
}

func (l *lease) fenceNow() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fence
}

// extend runs the renew or confirm script: true when the lease is
// extended (its validity moves on); an error wrapping ErrLeaseLost when
// another owner has it or its fence moved on; another error when Redis
// did not answer in time. A lease Redis lost before it expired (a
// restart, FLUSHALL) is taken again under a new fence when it is free.
func (l *lease) extend(script *redis.Script, part time.Duration) (bool, error) {
	r := l.r
	l.calls.Lock()
	defer l.calls.Unlock()
	start := r.clock.Now()
	l.mu.Lock()
	fence, left := l.fence, l.until.Sub(start)
	l.mu.Unlock()
	if left <= 0 {
		return false, fmt.Errorf("%w: the lease of %s (fence %d) could not be renewed before its validity ended", ensure.ErrLeaseLost, l.ref, fence)
	}
	// A call may wait no longer than the lease is valid.
	ctx, cancel := context.WithTimeout(context.Background(), min(r.ttl/part, left))
	defer cancel()
	args := []any{l.token, r.ttl.Milliseconds()}
	keys := []string{l.key}
	if script == confirmScript {
		keys, args = append(keys, l.fkey), append(args, fence)
	}
	n, err := script.Run(ctx, r.c, keys, args...).Int()
	if err != nil {
		r.unreachable(err)
		return false, err
	}
	r.reached()
	switch n {
	case 1:
		l.mu.Lock()
		l.until = r.validity(start)
		l.mu.Unlock()
		return true, nil
	case -1:
		// Redis lost the lease while it was valid: take it again, under a
		// new fence, unless another owner took it first.
		nf, err := r.take(ctx, l.key, l.fkey, l.token)
		if err != nil {
			r.unreachable(err)
			return false, err
		}
		if nf > 0 {
			l.mu.Lock()
			l.fence, l.until = nf, r.validity(start)
			l.mu.Unlock()
			r.log.Warn("build lease was gone from Redis (restarted or flushed): taken again under a new fence", "ref", l.ref, "fence", fence, "new_fence", nf)
			return true, nil
		}
	case -2:
		cur, _ := r.c.Get(ctx, l.fkey).Result()
		r.log.Warn("build lease fenced off: the tag's fence moved on; stopping the build before it pushes", "ref", l.ref, "fence", fence, "current", cur)
		return false, fmt.Errorf("%w: the fence of %s moved from %d to %s", ensure.ErrLeaseLost, l.ref, fence, cur)
	}
	holder, _ := r.c.Get(ctx, l.key).Result()
	r.log.Warn("build lease lost to another owner: stopping the build before it pushes", "ref", l.ref, "fence", fence, "owner", l.token, "holder", holder)
	return false, fmt.Errorf("%w: the lease of %s (fence %d) is held by %s", ensure.ErrLeaseLost, l.ref, fence, holder)
}

// confirm implements ensure.Lease.Confirm: one compare script checks that
// the lease is this owner's under this fence and extends it. While Redis
// does not answer it tries again until the lease's validity ends; a lease
// that is lost, or could not be confirmed in time, ends the held context.
func (l *lease) confirm(ctx context.Context) (int64, error) {
	for {
		if l.held.Err() != nil {
			return 0, context.Cause(l.held)
		}
		ok, err := l.extend(confirmScript, 3)
		switch {
		case ok:
			return l.fenceNow(), nil
		case errors.Is(err, ensure.ErrLeaseLost):
			err = fmt.Errorf("%w (checked before the push)", err)
			l.lose(err)
			return 0, err
		}
		t := l.r.clock.NewTimer(l.r.ttl / 10)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, fmt.Errorf("confirming the lease of %s: %w", l.ref, ctx.Err())
		case <-l.held.Done():
			t.Stop()
		case <-t.C():
		}
	}
}

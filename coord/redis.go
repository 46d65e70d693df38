package coord

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ispec-dev/ispec/ensure"
)

// Redis coordinates the replicas that share one Redis: it is the
// pipeline's Locker and Exchange. It is safe for concurrent use.
type Redis struct {
	c         *redis.Client
	ttl       time.Duration
	prefix    string
	owner     string
	streamTTL time.Duration
	streamMax int64
	poll      time.Duration
	log       *slog.Logger

	mem      ensure.MemLocker // the fallback while Redis is unreachable
	degraded atomic.Bool
	stop     chan struct{}
	stopped  sync.WaitGroup
	closing  sync.Once
}

// renewScript extends the lease when the caller still owns it (1), takes
// it again when it is free (2: it expired while Redis could not be
// reached, or Redis restarted without it), and fails when another owner
// has it (0).
var renewScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if not v then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
end
return 0`)

// releaseSrc deletes a key only when it holds the caller's value.
const releaseSrc = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`

var releaseScript = redis.NewScript(releaseSrc)

// New returns a coordinator over the Redis at url (redis://[user:pass@]
// host:port[/db], or rediss:// for TLS). It does not connect: an
// unreachable Redis degrades coordination rather than failing.
func New(url string, opts ...Option) (*Redis, error) {
	ro, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("coord: redis url: %w", err)
	}
	// Fail fast when Redis is away: builds fall back to the in-process
	// lock instead of waiting for it.
	ro.DialTimeout = time.Second
	ro.ReadTimeout = 2 * time.Second
	ro.WriteTimeout = 2 * time.Second
	ro.MaxRetries = 1
	host, _ := os.Hostname()
	r := &Redis{
		c: redis.NewClient(ro), ttl: 30 * time.Second, prefix: "ispec:", owner: fmt.Sprintf("%s/%d", host, os.Getpid()),
		streamTTL: time.Hour, streamMax: 10000, poll: 100 * time.Millisecond,
		log: slog.New(slog.DiscardHandler), stop: make(chan struct{}),
	}
	for _, opt := range opts {
		if err := opt(r); err != nil {
			r.c.Close()
			return nil, fmt.Errorf("coord: %w", err)
		}
	}
	r.stopped.Add(1)
	go r.probe()
	return r, nil
}

// Close stops the coordinator's background work and closes its
// connections; leases still held are left to expire.
func (r *Redis) Close() error {
	r.closing.Do(func() { close(r.stop) })
	r.stopped.Wait()
	return r.c.Close()
}

// Degraded reports whether Redis could not be reached the last time it
// was used: builds are then coordinated in process only.
func (r *Redis) Degraded() bool { return r.degraded.Load() }

// TTL returns the lease TTL.
func (r *Redis) TTL() time.Duration { return r.ttl }

// probe pings Redis while coordination is degraded, so that it resumes
// (and Degraded says so) without waiting for the next build.
func (r *Redis) probe() {
	defer r.stopped.Done()
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		}
		if !r.degraded.Load() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if err := r.c.Ping(ctx).Err(); err == nil {
			r.reached()
		}
		cancel()
	}
}

// unreachable records that Redis could not be used.
func (r *Redis) unreachable(err error) {
	if r.degraded.CompareAndSwap(false, true) {
		r.log.Warn("redis unreachable: coordinating builds in this process only (duplicate builds of identical images are possible)", "error", err)
	}
}

// reached records that Redis answered.
func (r *Redis) reached() {
	if r.degraded.CompareAndSwap(true, false) {
		r.log.Info("redis reachable again: shared coordination resumed")
	}
}

func (r *Redis) key(kind, name string) string { return r.prefix + kind + ":" + name }

// Lock implements ensure.Locker with a lease in Redis. The held context
// carries the lease (ensure.LeaseFrom) and ends, with ensure.ErrLeaseLost
// as its cause, when another owner has the lease. When Redis cannot be
// reached it takes an in-process lock instead.
func (r *Redis) Lock(ctx context.Context, ref string, wait func(holder string)) (context.Context, func() error, error) {
	key := r.key("lease", ref)
	token := r.owner + "/" + randomHex()
	waited := false
	onceWait := func(holder string) {
		if !waited && wait != nil {
			waited = true
			wait(holder)
		}
	}
	for {
		ok, err := r.c.SetNX(ctx, key, token, r.ttl).Result()
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, fmt.Errorf("locking %s: %w", ref, ctx.Err())
			}
			r.unreachable(err)
			return r.mem.Lock(ctx, ref, onceWait)
		}
		r.reached()
		if ok {
			fence, err := r.c.Incr(ctx, r.key("fence", ref)).Result()
			if err != nil {
				// The lease is ours; only its number is unknown.
				fence = 0
			}
			return r.hold(ctx, ref, key, token, fence)
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

// hold renews a lease taken until it is released or lost.
func (r *Redis) hold(ctx context.Context, ref, key, token string, fence int64) (context.Context, func() error, error) {
	held, lose := context.WithCancelCause(ctx)
	held = ensure.ContextWithLease(held, ensure.Lease{Fence: fence, Owner: token})
	done := make(chan struct{})
	renewed := make(chan struct{})
	go func() {
		defer close(renewed)
		t := time.NewTicker(r.ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-held.Done():
				return
			case <-t.C:
			}
			rctx, cancel := context.WithTimeout(context.Background(), r.ttl/3)
			n, err := renewScript.Run(rctx, r.c, []string{key}, token, r.ttl.Milliseconds()).Int()
			cancel()
			switch {
			case err != nil:
				// Nobody reaching this Redis can take the lease either;
				// the build goes on (the registry is checked before the
				// push).
				r.unreachable(err)
			case n == 0:
				holder, _ := r.c.Get(context.Background(), key).Result()
				r.log.Warn("build lease lost to another owner: stopping the build before it pushes", "ref", ref, "fence", fence, "owner", token, "holder", holder)
				lose(fmt.Errorf("%w: the lease of %s (fence %d) is held by %s", ensure.ErrLeaseLost, ref, fence, holder))
				return
			default:
				r.reached()
			}
		}
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
	return held, release, nil
}

func randomHex() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return fmt.Sprintf("%016x", time.Now().UnixNano())
	}
	return hex.EncodeToString(b[:])
}

// errNoBuild: no build of the tag has published yet.
var errNoBuild = errors.New("no build published")

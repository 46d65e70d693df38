package coord

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ispec-dev/ispec/ensure"
	"github.com/ispec-dev/ispec/internal/clock"
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
	clock     clock.Clock

	mem      ensure.MemLocker // the fallback while Redis is unreachable
	degraded atomic.Bool
	stop     chan struct{}
	stopped  sync.WaitGroup
	closing  sync.Once
}

// takeScript takes a free lease and gives it the tag's next fence, in
// one step: KEYS lease, fence; ARGV token, TTL ms, now ms. The fence is
// the larger of the counter plus one and the taker's clock in
// milliseconds, so that a Redis that lost the counter (a restart without
// persistence, FLUSHALL, an eviction) never hands out a smaller fence
// than it did before. It returns the fence, or 0 when the lease is held.
var takeScript = redis.NewScript(`
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 0
end
local f = redis.call('INCR', KEYS[2])
local now = tonumber(ARGV[3])
if f < now then
  redis.call('SET', KEYS[2], ARGV[3])
  f = now
end
redis.call('PEXPIRE', KEYS[2], 86400000)
return f`)

// renewScript extends the lease when the caller still owns it (1); it
// never takes it again: 0 when another owner has it, -1 when it is gone
// (Redis lost it before it expired: the caller may take it again, under
// a new fence).
var renewScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if v then
  return 0
end
return -1`)

// confirmScript is the check right before a push: KEYS lease, fence;
// ARGV token, TTL ms, fence. It extends the lease and returns 1 when the
// lease is the caller's and the tag's fence is still the caller's; 0
// when another owner has the lease, -1 when it is gone, -2 when the fence
// moved on.
var confirmScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if not v then
  return -1
end
if v ~= ARGV[1] then
  return 0
end
local f = redis.call('GET', KEYS[2])
if f and f ~= ARGV[3] then
  return -2
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`)

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
		log: slog.New(slog.DiscardHandler), clock: clock.Real{}, stop: make(chan struct{}),
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

// errNoBuild: no build of the tag has published yet.
var errNoBuild = errors.New("no build published")

package assemble

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/ispec-dev/ispec/coord"
	"github.com/ispec-dev/ispec/ensure"
)

// lockOptions return the lock per tag: a file in the cache dir for the
// CLI; in process, or a Redis lease shared by replicas, for the server
// (which then reports ispec_coordination_degraded).
func (p *Pipeline) lockOptions(s Settings) ([]ensure.Option, error) {
	sv := s.Serve
	if sv == nil {
		return []ensure.Option{ensure.WithLocker(ensure.FileLocker{Dir: s.Lookup.CacheDir})}, nil
	}
	var rc *coord.Redis
	var opts []ensure.Option
	if sv.RedisURL != "" {
		var err error
		if rc, err = newRedis(sv); err != nil {
			return nil, err
		}
		p.closers = append(p.closers, rc.Close)
		opts = append(opts, ensure.WithLocker(rc), ensure.WithExchange(rc))
	}
	if sv.Registerer != nil {
		err := sv.Registerer.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "ispec_coordination_degraded", Help: "1 while Redis cannot be reached and builds are coordinated in this process only.",
		}, func() float64 {
			if rc != nil && rc.Degraded() {
				return 1
			}
			return 0
		}))
		if err != nil {
			return nil, err
		}
	}
	return opts, nil
}

// newRedis connects to the replicas' Redis; a build's event stream lives
// an hour, or as long as a failure is remembered.
func newRedis(sv *ServeSettings) (*coord.Redis, error) {
	streamTTL := max(time.Hour, sv.FailureTTL)
	copts := []coord.Option{coord.WithLeaseTTL(sv.LeaseTTL), coord.WithStreamTTL(streamTTL)}
	if sv.Logger != nil {
		// go-redis's own messages go to the structured log, once per
		// state change.
		redis.SetLogger(coord.NewRedisLogger(sv.Logger))
		copts = append(copts, coord.WithLogger(sv.Logger))
	}
	rc, err := coord.New(sv.RedisURL, copts...)
	if err != nil {
		return nil, fmt.Errorf("redis-url: %w", errors.Unwrap(err))
	}
	return rc, nil
}

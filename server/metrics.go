package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ispec-dev/ispec/ensure"
)

// metrics are the service's own Prometheus metrics; gRPC's come from
// go-grpc-middleware's provider (see Interceptors).
type metrics struct {
	builds   *prometheus.CounterVec
	duration prometheus.Histogram
	joins    prometheus.Counter
	lookups  *prometheus.CounterVec
	upload   prometheus.Counter
	locks    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, p *ensure.Pipeline) (*metrics, error) {
	m := &metrics{
		builds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ispec_builds_total", Help: "Build calls by result: built, found, joined, failed.",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ispec_build_duration_seconds", Help: "Duration of builds this server ran, push included.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}),
		joins: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ispec_build_joins_total", Help: "Build calls that joined another caller's build of the same tag.",
		}),
		lookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ispec_lookups_total", Help: "Registry lookups by result: exists, absent, unknown.",
		}, []string{"result"}),
		locks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ispec_locks_total", Help: "Lock calls by result: locked, checked, failed, refused (too many at once).",
		}, []string{"result"}),
		upload: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ispec_upload_bytes_total", Help: "Bytes of file content callers uploaded: blob bytes WriteBlob received and file content sent inline.",
		}),
	}
	if reg == nil {
		return m, nil
	}
	inFlight := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ispec_builds_in_flight", Help: "Builds running now.",
	}, func() float64 { return float64(p.Stats().Running) })
	queue := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "ispec_build_queue_depth", Help: "Builds waiting for a slot.",
	}, func() float64 { return float64(p.Stats().Queued) })
	for _, c := range []prometheus.Collector{m.builds, m.duration, m.joins, m.lookups, m.upload, m.locks, inFlight, queue} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

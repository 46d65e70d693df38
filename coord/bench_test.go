package coord

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/ispec-dev/ispec/ensure"
	"github.com/ispec-dev/ispec/internal/testenv"
)

// BenchmarkCoordinationOverhead is what shared coordination adds to one
// build against a local redis-server: take the lease (SET NX, INCR),
// publish a build's events, finish and
// release. It reports the median per build.
func BenchmarkCoordinationOverhead(b *testing.B) {
	rd := testenv.StartRedis(b)
	for _, n := range []int{10, 200} {
		b.Run(fmt.Sprintf("events=%d", n), func(b *testing.B) { benchOverhead(b, rd, n) })
	}
}

func benchOverhead(b *testing.B, rd *testenv.Redis, events int) {
	r, err := New(rd.URL())
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	times := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ref := fmt.Sprintf("reg.example/app-%d:%d", events, i)
		start := time.Now()
		held, release, err := r.Lock(context.Background(), ref, nil)
		if err != nil {
			b.Fatal(err)
		}
		l, _ := ensure.LeaseFrom(held)
		pub := r.Publish(ref, fmt.Sprint(i), l)
		for j := 0; j < events; j++ {
			pub.Add(ensure.Event{Kind: ensure.KindProgress, Ref: ref})
		}
		pub.Finish(&ensure.Result{Outcome: ensure.OutcomeBuilt}, nil, time.Minute)
		release()
		times = append(times, time.Since(start))
	}
	b.StopTimer()
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "median-ms")
}

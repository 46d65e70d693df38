package server_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	apiv1 "github.com/ispec-dev/ispec/api/ispec/v1"
	"github.com/ispec-dev/ispec/builder"
	"github.com/ispec-dev/ispec/cache"
	"github.com/ispec-dev/ispec/coord"
	"github.com/ispec-dev/ispec/ensure"
	"github.com/ispec-dev/ispec/internal/testenv"
	"github.com/ispec-dev/ispec/pool"
	"github.com/ispec-dev/ispec/server"
)

// replica is one server of several sharing a Redis, each with its own
// pipeline.
type replica struct {
	*harness
	rc    *coord.Redis
	rcLog *logEvents // what its coordinator logs
}

// logEvents is a slog handler that keeps each message, so that a test
// waits for a line the code logs instead of polling its state.
type logEvents struct {
	mu      sync.Mutex
	msgs    []string
	changed chan struct{} // closed and replaced on each message
}

func newLogEvents() *logEvents { return &logEvents{changed: make(chan struct{})} }

func (l *logEvents) Enabled(context.Context, slog.Level) bool { return true }
func (l *logEvents) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.msgs = append(l.msgs, r.Message)
	close(l.changed)
	l.changed = make(chan struct{})
	return nil
}
func (l *logEvents) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logEvents) WithGroup(string) slog.Handler      { return l }

// mark is where the next message will be.
func (l *logEvents) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.msgs)
}

// await waits for a message from index from on that contains substr,
// failing after d.
func (l *logEvents) await(t testing.TB, from int, substr string, d time.Duration) {
	t.Helper()
	timeout := time.After(d)
	for {
		l.mu.Lock()
		for _, m := range l.msgs[from:] {
			if strings.Contains(m, substr) {
				l.mu.Unlock()
				return
			}
		}
		changed := l.changed
		l.mu.Unlock()
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("no log line with %q within %s", substr, d)
		}
	}
}

func startReplica(t testing.TB, redisURL string, ttl time.Duration, b ensure.Builder) *replica {
	t.Helper()
	env := testenv.Load(t)
	remote, err := cache.NewRemote()
	if err != nil {
		t.Fatal(err)
	}
	if b == nil {
		bb, err := builder.New(context.Background(), builder.Options{Addr: env.BuildkitHost})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { bb.Close() })
		b = bb
	}
	rcLog := newLogEvents()
	rc, err := coord.New(redisURL, coord.WithLeaseTTL(ttl), coord.WithLogger(slog.New(rcLog)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close() })
	p, err := ensure.New(ensure.WithLookup(remote), ensure.WithBuilder(b), ensure.WithLocker(rc), ensure.WithExchange(rc), ensure.WithFailureTTL(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(p, remote, server.WithUploadDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	return &replica{harness: &harness{env: env, addr: serveLoopback(t, srv), p: p}, rc: rc, rcLog: rcLog}
}

// buildAcross runs n Build calls spread over the replicas and returns
// their results.
func buildAcross(t testing.TB, rs []*replica, n int, body string) ([]*ensure.Result, []error, string) {
	t.Helper()
	// A nonce in the step defeats BuildKit's cache: the step really runs.
	img := rs[0].newSpec(t, strings.Replace(body, "NONCE", fmt.Sprint(time.Now().UnixNano()), 1))
	results, errs := make([]*ensure.Result, n), make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		c := rs[i%len(rs)].client(t)
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = c.Build(context.Background(), img, ensure.Request{}, apiv1.ProgressDetail_PROGRESS_DETAIL_STEPS)
		}()
	}
	wg.Wait()
	for i := range results {
		if results[i] != nil && results[i].Outcome == ensure.OutcomeBuilt {
			t.Logf("built %s in %s", results[i].Ref.Name(), results[i].Duration)
		}
	}
	return results, errs, repoOf(img)
}

func checkOneBuild(t testing.TB, env *testenv.Env, results []*ensure.Result, errs []error, repo string) {
	t.Helper()
	built := 0
	for i := range results {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		if results[i].Digest != results[0].Digest {
			t.Errorf("caller %d got %s, caller 0 %s", i, results[i].Digest, results[0].Digest)
		}
		if results[i].Outcome == ensure.OutcomeBuilt {
			built++
		}
	}
	if built != 1 {
		t.Errorf("%d callers built, want 1", built)
	}
	if puts := testenv.CountManifestPuts(t, env.RegistryLog, repo); puts != 1 {
		t.Errorf("%d manifest PUTs for %s, want 1", puts, repo)
	}
}

func TestTwoReplicasFiftyCallersOneBuild(t *testing.T) {
	rd := testenv.StartRedis(t)
	rs := []*replica{startReplica(t, rd.URL(), 30*time.Second, nil), startReplica(t, rd.URL(), 30*time.Second, nil)}
	results, errs, repo := buildAcross(t, rs, 50, "commands: [\"sleep 4; echo NONCE > /built.txt\"]\n")
	checkOneBuild(t, rs[0].env, results, errs, repo)
	// Each replica ran one flight; the one that did not build followed the
	// other's build from Redis.
	for i, r := range rs {
		if b := r.p.Builds(); len(b) != 1 || b[0].State != ensure.StateSucceeded {
			t.Errorf("replica %d builds %+v", i, b)
		}
	}
}

func TestLeaseRenewedUnderALongBuild(t *testing.T) {
	rd := testenv.StartRedis(t)
	ttl := 1500 * time.Millisecond
	rs := []*replica{startReplica(t, rd.URL(), ttl, nil), startReplica(t, rd.URL(), ttl, nil)}
	// The build sleeps for more than three lease TTLs.
	results, errs, repo := buildAcross(t, rs, 6, "commands: [\"sleep 6; echo NONCE > /long.txt\"]\n")
	checkOneBuild(t, rs[0].env, results, errs, repo)
	// One lease taken, once: its fence is renewed with it.
	fences := 0
	for _, r := range rs {
		for _, b := range r.p.Builds() {
			if b.Result != nil && b.Result.Outcome == ensure.OutcomeBuilt {
				fences++
				if b.Fence <= 0 || b.Result.Fence != b.Fence {
					t.Errorf("the build ran under fence %d (result %d), want one fence, from the clock", b.Fence, b.Result.Fence)
				}
			}
		}
	}
	if fences != 1 {
		t.Errorf("%d builds, want 1", fences)
	}
	// The build record callers see carries the fence and the daemon.
	var seen int
	for _, r := range rs {
		conn, err := grpc.NewClient(r.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		list, err := apiv1.NewImageServiceClient(conn).ListBuilds(context.Background(), &apiv1.ListBuildsRequest{})
		conn.Close()
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range list.GetBuilds() {
			if b.GetOutcome() == apiv1.BuildOutcome_BUILD_OUTCOME_BUILT {
				seen++
				if b.GetFence() <= 0 || b.GetDaemon() == "" {
					t.Errorf("ListBuilds shows fence %d daemon %q, want the fence and the daemon", b.GetFence(), b.GetDaemon())
				}
			}
		}
	}
	if seen != 1 {
		t.Errorf("ListBuilds shows %d built builds, want 1", seen)
	}
}

func TestRedisStoppedBuildsGoOnThenCoordinationResumes(t *testing.T) {
	rd := testenv.StartRedis(t)
	rs := []*replica{startReplica(t, rd.URL(), 3*time.Second, nil), startReplica(t, rd.URL(), 3*time.Second, nil)}
	rd.Stop()
	// Degraded: each replica coordinates its own callers; builds succeed.
	results, errs, _ := buildAcross(t, rs, 4, "commands: [\"echo NONCE > /d.txt\"]\n")
	for i, err := range errs {
		if err != nil {
			t.Fatalf("caller %d with redis down: %v", i, err)
		}
		if results[i].Digest != results[0].Digest {
			t.Errorf("caller %d got another digest", i)
		}
	}
	for i, r := range rs {
		if !r.rc.Degraded() {
			t.Errorf("replica %d not degraded with redis down", i)
		}
	}
	rd.Start()
	results, errs, repo := buildAcross(t, rs, 10, "commands: [\"sleep 2; echo NONCE > /b.txt\"]\n")
	checkOneBuild(t, rs[0].env, results, errs, repo)
	for i, r := range rs {
		if r.rc.Degraded() {
			t.Errorf("replica %d still degraded with redis back", i)
		}
	}
}

func TestALeaseWhoseRenewalsFailStopsTheBuildBeforeThePush(t *testing.T) {
	rd := testenv.StartRedis(t)
	ttl := 6 * time.Second
	a, b := startReplica(t, rd.URL(), ttl, nil), startReplica(t, rd.URL(), ttl, nil)
	img := a.newSpec(t, fmt.Sprintf("commands: [\"sleep 3; echo %d > /fenced.txt\"]\n", time.Now().UnixNano()))
	repo := repoOf(img)
	// A builds under its lease; Redis hangs (paused) right after A took
	// it, so no renewal and no check before the push gets an answer.
	aDone := make(chan error, 1)
	leased := make(chan struct{})
	var leasedOnce sync.Once
	go func() {
		_, err := a.client(t).Build(context.Background(), img, ensure.Request{Sink: func(ev ensure.Event) {
			if ev.Kind == ensure.KindBuilding && ev.Fence > 0 {
				leasedOnce.Do(func() { close(leased) })
			}
		}}, apiv1.ProgressDetail_PROGRESS_DETAIL_NONE)
		aDone <- err
	}()
	select {
	case <-leased:
	case err := <-aDone:
		t.Fatalf("replica A's build ended before it took a lease: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("replica A took no lease within 30s")
	}
	rd.Pause()
	t.Cleanup(rd.Resume)
	var errA error
	select {
	case errA = <-aDone:
	case <-time.After(2 * time.Minute):
		t.Fatal("replica A's build did not end with its lease")
	}
	if errA == nil || ensure.ClassOf(errA) != ensure.ClassUnavailable || !strings.Contains(errA.Error(), "lease") {
		t.Fatalf("replica A's caller got %v; want UNAVAILABLE: the lease was lost", errA)
	}
	if puts := testenv.CountManifestPuts(t, a.env.RegistryLog, repo); puts != 0 {
		t.Fatalf("a build that lost its lease pushed (%d manifest PUTs)", puts)
	}
	t.Logf("replica A stopped: %v", errA)
	// B builds (coordinating in process while Redis hangs) and pushes.
	res, err := b.client(t).Build(context.Background(), img, ensure.Request{}, apiv1.ProgressDetail_PROGRESS_DETAIL_NONE)
	if err != nil {
		t.Fatalf("replica B: %v", err)
	}
	if res.Outcome != ensure.OutcomeBuilt {
		t.Errorf("replica B's outcome %s, want built (a lost lease is not remembered)", res.Outcome)
	}
	t.Logf("replica B built in %s", res.Duration)
	rd.Resume()
	if puts := testenv.CountManifestPuts(t, a.env.RegistryLog, repo); puts != 1 {
		t.Errorf("%d manifest PUTs, want 1: only the build that held its lease pushed", puts)
	}
	found, err := a.client(t).Build(context.Background(), img, ensure.Request{}, apiv1.ProgressDetail_PROGRESS_DETAIL_NONE)
	if err != nil || found.Digest != res.Digest {
		t.Errorf("the tag holds %v (%v), want B's %s", found, err, res.Digest)
	}
}

func TestPoolKeepsRelatedSpecsOnOneDaemonAndSkipsADownOne(t *testing.T) {
	env := testenv.Load(t)
	daemons := map[string]*testenv.Buildkitd{}
	for i := 0; i < 2; i++ {
		d := env.StartBuildkitd(t)
		daemons[d.Host] = d
	}
	var addrs []string
	for a := range daemons {
		addrs = append(addrs, a)
	}
	reg := prometheus.NewRegistry()
	pl, err := pool.New(addrs, builder.Options{}, pool.WithMaxPerDaemon(2), pool.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer pl.Close()
	rd := testenv.StartRedis(t)
	r := startReplica(t, rd.URL(), 10*time.Second, pl)
	c := r.client(t)
	build := func(body string) string {
		t.Helper()
		res, err := c.Build(context.Background(), r.newSpec(t, body), ensure.Request{}, apiv1.ProgressDetail_PROGRESS_DETAIL_NONE)
		if err != nil {
			t.Fatal(err)
		}
		// The build record names the daemon.
		for _, b := range r.p.Builds() {
			if b.ID == res.BuildID && b.Result != nil {
				return b.Result.Daemon
			}
		}
		t.Fatalf("no build record for %s", res.BuildID)
		return ""
	}
	d1 := build("commands: [\"echo one > /one.txt\"]\n")
	d2 := build("commands: [\"echo two > /two.txt\"]\n")
	if d1 == "" || d1 != d2 {
		t.Fatalf("the specs built on %q and %q, want one daemon (same base and apt set)", d1, d2)
	}
	if n := counter(t, reg, d1, "ok"); n != 2 {
		t.Errorf("ispec_buildkit_builds_total{daemon=%q,result=ok} = %v, want 2", d1, n)
	}
	daemons[d1].Stop()
	d3 := build("commands: [\"echo three > /three.txt\"]\n")
	if d3 == d1 || daemons[d3] == nil {
		t.Errorf("after stopping %s the build ran on %q, want the other daemon", d1, d3)
	}
	if n := counter(t, reg, d3, "ok"); n != 1 {
		t.Errorf("ispec_buildkit_builds_total{daemon=%q,result=ok} = %v, want 1", d3, n)
	}
}

// counter reads ispec_buildkit_builds_total{daemon, result}.
func counter(t *testing.T, reg *prometheus.Registry, daemon, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "ispec_buildkit_builds_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["daemon"] == daemon && labels["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// BenchmarkReplicas measures 50 callers of one new spec across two
// replicas sharing Redis against one caller's build of the same work, and
// checks that it was built once (scripts/bench-replicas.sh runs it once:
// -benchtime 1x).
func BenchmarkReplicas(b *testing.B) {
	t := b
	rd := testenv.StartRedis(t)
	rs := []*replica{startReplica(t, rd.URL(), 30*time.Second, nil), startReplica(t, rd.URL(), 30*time.Second, nil)}
	const body = "commands: [\"sleep 3; echo NONCE > /bench.txt\"]\n"
	start := time.Now()
	_, errs, _ := buildAcross(t, rs[:1], 1, body)
	single := time.Since(start)
	if errs[0] != nil {
		t.Fatal(errs[0])
	}
	start = time.Now()
	results, errs, repo := buildAcross(t, rs, 50, body)
	many := time.Since(start)
	checkOneBuild(t, rs[0].env, results, errs, repo)
	ratio := many.Seconds() / single.Seconds()
	b.ReportMetric(ratio, "ratio")
	b.Logf("single caller %s; 50 callers across 2 replicas %s; ratio %.2f (target <= 1.2)", single.Round(time.Millisecond), many.Round(time.Millisecond), ratio)
}

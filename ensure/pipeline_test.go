package ensure

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/ispec-dev/ispec/builder"
)

const testRef = "reg.example/app:0123456789abcdef0123456789abcdef"

func TestBuildsAbsentImageOnceWithEventsInOrder(t *testing.T) {
	reg := newFakeRegistry()
	b := &fakeBuilder{reg: reg}
	lk := &countingLocker{}
	rec := &recorder{}
	p := newTestPipeline(t, reg, b, WithLocker(lk), WithRecorder(rec))
	var ev events
	res, err := p.Ensure(context.Background(), image(testRef), Request{Sink: ev.sink})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != OutcomeBuilt || res.Digest != digestOf(testRef) || res.BuildID == "" {
		t.Errorf("result = %+v, want built with the pushed digest", res)
	}
	want := []Kind{KindAccepted, KindBuilding, KindProgress, KindPushed, KindDone}
	if got := ev.list(); !reflect.DeepEqual(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
	if lk.taken != 1 {
		t.Errorf("lock taken %d times, want 1", lk.taken)
	}
	// Once before the lock, once after it.
	if n := reg.lookupsOf(testRef); n != 2 {
		t.Errorf("registry asked %d times, want 2 (before and after the lock)", n)
	}
	if len(rec.refs) != 1 || rec.refs[0] != res.Pinned() {
		t.Errorf("recorded %v, want [%s]", rec.refs, res.Pinned())
	}
}

func TestExistingImageIsFoundWithoutLockOrBuild(t *testing.T) {
	reg := newFakeRegistry()
	reg.push(testRef, digestOf("other"))
	b := &fakeBuilder{reg: reg}
	lk := &countingLocker{}
	p := newTestPipeline(t, reg, b, WithLocker(lk))
	var ev events
	res, err := p.Ensure(context.Background(), image(testRef), Request{Sink: ev.sink})
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != OutcomeFound || res.Source != SourceRegistry || res.Digest != digestOf("other") {
		t.Errorf("result = %+v, want found in the registry", res)
	}
	if got, want := ev.list(), []Kind{KindFound, KindDone}; !reflect.DeepEqual(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
	if lk.taken != 0 || len(b.builds()) != 0 {
		t.Errorf("lock taken %d times, %d builds; want none", lk.taken, len(b.builds()))
	}
}

func TestRecheckAfterLockFindsAnotherProcessesPush(t *testing.T) {
	reg := newFakeRegistry()
	b := &fakeBuilder{reg: reg}
	// The lock is held by "another process" that pushes before releasing.
	lk := &countingLocker{}
	_, release, _ := lk.MemLocker.Lock(context.Background(), testRef, nil)
	p := newTestPipeline(t, reg, b, WithLocker(lk))
	var ev events
	done := make(chan struct{})
	var res *Result
	var err error
	go func() {
		defer close(done)
		res, err = p.Ensure(context.Background(), image(testRef), Request{Sink: ev.sink})
	}()
	ev.await(t, KindWaiting)
	reg.push(testRef, digestOf("theirs"))
	release()
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != OutcomeFound || res.Digest != digestOf("theirs") {
		t.Errorf("result = %+v, want the other process's image, found", res)
	}
	if len(b.builds()) != 0 {
		t.Errorf("%d builds, want none", len(b.builds()))
	}
	want := []Kind{KindAccepted, KindWaiting, KindFound, KindDone}
	if got := ev.list(); !reflect.DeepEqual(got, want) {
		t.Errorf("events = %v, want %v", got, want)
	}
}

func TestConcurrentCallersShareOneBuild(t *testing.T) {
	reg := newFakeRegistry()
	b := &fakeBuilder{reg: reg, gate: make(chan struct{})}
	p := newTestPipeline(t, reg, b)
	const n = 50
	var wg sync.WaitGroup
	results := make([]*Result, n)
	evs := make([]events, n)
	in := make(arrivals, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := p.Ensure(context.Background(), image(testRef), Request{Sink: in.sink(evs[i].sink)})
			if err != nil {
				t.Error(err)
			}
			results[i] = r
		}()
	}
	in.await(t, n)
	close(b.gate)
	wg.Wait()
	if len(b.builds()) != 1 {
		t.Fatalf("%d builds, want 1", len(b.builds()))
	}
	counts := map[Outcome]int{}
	for i, r := range results {
		if r == nil {
			continue
		}
		counts[r.Outcome]++
		if r.Digest != digestOf(testRef) {
			t.Errorf("caller %d got %s", i, r.Digest)
		}
		// Every caller sees the build from its start.
		if k := evs[i].list(); !contains(k, KindBuilding) || !contains(k, KindProgress) || k[len(k)-1] != KindDone {
			t.Errorf("caller %d events = %v", i, k)
		}
	}
	if counts[OutcomeBuilt] != 1 || counts[OutcomeJoined] != n-1 {
		t.Errorf("outcomes = %v, want 1 built and %d joined", counts, n-1)
	}
}

func TestCallerThatLeavesDoesNotCancelTheBuild(t *testing.T) {
	reg := newFakeRegistry()
	b := &fakeBuilder{reg: reg, gate: make(chan struct{}), start: make(chan string, 1)}
	p := newTestPipeline(t, reg, b)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := p.Ensure(ctx, image(testRef), Request{})
		errc <- err
	}()
	<-b.start
	joined := make(chan *Result, 1)
	in := make(arrivals, 1)
	go func() {
		r, _ := p.Ensure(context.Background(), image(testRef), Request{Sink: in.sink(nil)})
		joined <- r
	}()
	in.await(t, 1)
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) || ClassOf(err) != ClassCanceled {
		t.Errorf("leaving caller got %v, want canceled", err)
	}
	close(b.gate)
	if r := <-joined; r == nil || r.Outcome != OutcomeJoined {
		t.Errorf("remaining caller got %+v, want joined", r)
	}
	if _, ok := reg.tags[testRef]; !ok {
		t.Error("the build did not finish after its starter left")
	}
}

func TestFailedBuildIsRememberedForTheFailureTTL(t *testing.T) {
	reg := newFakeRegistry()
	b := &fakeBuilder{reg: reg, err: errStep}
	p := newTestPipeline(t, reg, b, WithFailureTTL(time.Hour))
	for i := 0; i < 10; i++ {
		var ev events
		_, err := p.Ensure(context.Background(), image(testRef), Request{Sink: ev.sink})
		var se interface{ Unwrap() error }
		if !errors.As(err, &se) || ClassOf(err) != ClassFailed {
			t.Fatalf("call %d: err = %v, want the step failure", i, err)
		}
		if k := ev.list(); k[len(k)-1] != KindFailed {
			t.Errorf("call %d: events = %v, want to end in failed", i, k)
		}
	}
	if len(b.builds()) != 1 {
		t.Errorf("%d builds, want 1", len(b.builds()))
	}
	if _, ok := reg.tags[testRef]; ok {
		t.Error("a failed build pushed")
	}
}

func TestFailureIsForgottenWithoutTTL(t *testing.T) {
	reg := newFakeRegistry()
	b := &fakeBuilder{reg: reg, err: errStep}
	p := newTestPipeline(t, reg, b)
	for i := 0; i < 2; i++ {
		if _, err := p.Ensure(context.Background(), image(testRef), Request{}); err == nil {
			t.Fatal("want an error")
		}
	}
	if len(b.builds()) != 2 {
		t.Errorf("%d builds, want 2", len(b.builds()))
	}
}

func TestQueueFullIsBusy(t *testing.T) {
	reg := newFakeRegistry()
	b := &fakeBuilder{reg: reg, gate: make(chan struct{})}
	p := newTestPipeline(t, reg, b, WithMaxBuilds(1), WithMaxQueue(1))
	b.start = make(chan string, 2)
	var wg sync.WaitGroup
	in := make(arrivals, 3)
	for _, r := range []string{"reg.example/a:1", "reg.example/b:1"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := p.Ensure(context.Background(), image(r), Request{Sink: in.sink(nil)}); err != nil {
				t.Error(err)
			}
		}()
	}
	// Both are accepted; one builds (in the builder), the other waits
	// for the only slot.
	in.await(t, 2)
	var running string
	select {
	case running = <-b.start:
	case <-time.After(10 * time.Second):
		t.Fatal("no build reached the builder within 10s")
	}
	if s := p.Stats(); s.Running != 1 || s.Queued != 1 {
		t.Fatalf("stats %+v, want 1 running and 1 queued", s)
	}
	_, err := p.Ensure(context.Background(), image("reg.example/c:1"), Request{})
	if !errors.Is(err, ErrBusy) || ClassOf(err) != ClassBusy {
		t.Errorf("third build: err = %v, want ErrBusy", err)
	}
	// Joining a running build is always allowed, with the queue full.
	joined := make(chan error, 1)
	go func() {
		res, err := p.Ensure(context.Background(), image(running), Request{Sink: in.sink(nil)})
		if err == nil && res.Outcome != OutcomeJoined {
			err = fmt.Errorf("outcome %s, want joined", res.Outcome)
		}
		joined <- err
	}()
	in.await(t, 1)
	close(b.gate)
	if err := <-joined; err != nil {
		t.Errorf("a caller of the running build with the queue full: %v", err)
	}
	wg.Wait()
}

func TestUnavailableRegistryBuildsNothing(t *testing.T) {
	reg := newFakeRegistry()
	reg.down = true
	b := &fakeBuilder{reg: reg}
	p := newTestPipeline(t, reg, b)
	_, err := p.Ensure(context.Background(), image(testRef), Request{})
	if ClassOf(err) != ClassUnavailable {
		t.Errorf("err = %v (class %s), want unavailable", err, ClassOf(err))
	}
	if len(b.builds()) != 0 {
		t.Error("built although the registry could not say")
	}
}

func TestNoRegistryIsInvalid(t *testing.T) {
	p := newTestPipeline(t, newFakeRegistry(), nil)
	img := image(testRef)
	img.Identity.Registry = ""
	_, err := p.Ensure(context.Background(), img, Request{})
	if !errors.Is(err, ErrInvalid) || !errors.Is(err, ErrNoRegistry) {
		t.Errorf("err = %v, want ErrNoRegistry", err)
	}
}

func TestParentIsBuiltOnceAndChildBuildsOnItsDigest(t *testing.T) {
	reg := newFakeRegistry()
	b := &fakeBuilder{reg: reg}
	p := newTestPipeline(t, reg, b)
	parent := image("reg.example/base:1")
	for _, child := range []string{"reg.example/a:1", "reg.example/b:1"} {
		img := image(child)
		img.Parent = parent
		if _, err := p.Ensure(context.Background(), img, Request{Force: true}); err != nil {
			t.Fatal(err)
		}
	}
	var parentBuilds int
	for _, o := range b.builds() {
		switch o.Ref {
		case "reg.example/base:1":
			parentBuilds++
		default:
			if want := "reg.example/base:1@" + digestOf("reg.example/base:1").String(); o.Base != want {
				t.Errorf("%s built on %q, want %q", o.Ref, o.Base, want)
			}
		}
	}
	if parentBuilds != 1 {
		t.Errorf("parent built %d times, want 1 (--force applies to the specs given, not their parents)", parentBuilds)
	}
}

func TestBuildTimeout(t *testing.T) {
	reg := newFakeRegistry()
	b := &fakeBuilder{reg: reg, gate: make(chan struct{})}
	p := newTestPipeline(t, reg, b, WithBuildTimeout(20*time.Millisecond))
	_, err := p.Ensure(context.Background(), image(testRef), Request{})
	if ClassOf(err) != ClassTimeout {
		t.Errorf("err = %v (class %s), want timeout", err, ClassOf(err))
	}
}

func TestWatchReplaysFromTheStart(t *testing.T) {
	reg := newFakeRegistry()
	b := &fakeBuilder{reg: reg, gate: make(chan struct{})}
	p := newTestPipeline(t, reg, b)
	var ev events
	built := make(chan error, 1)
	go func() {
		_, err := p.Ensure(context.Background(), image(testRef), Request{Sink: ev.sink})
		built <- err
	}()
	ev.await(t, KindProgress)
	id := p.Builds()[0].ID
	var watched events
	type watchEnd struct {
		res *Result
		err error
	}
	ended := make(chan watchEnd, 1)
	go func() {
		res, err := p.Watch(context.Background(), id, watched.sink)
		ended <- watchEnd{res, err}
	}()
	watched.await(t, KindProgress)
	close(b.gate)
	w := <-ended
	if w.err != nil || w.res.Outcome != OutcomeBuilt {
		t.Fatalf("watch = %+v, %v", w.res, w.err)
	}
	want := []Kind{KindBuilding, KindProgress, KindPushed, KindDone}
	if got := watched.list(); !reflect.DeepEqual(got, want) {
		t.Errorf("watched events = %v, want %v", got, want)
	}
	// Once finished, the build keeps its events, not its progress.
	if err := <-built; err != nil {
		t.Fatalf("the build: %v", err)
	}
	if !contains(ev.list(), KindDone) {
		t.Errorf("the build's caller got %v, without Done", ev.list())
	}
	var after events
	if _, err := p.Watch(context.Background(), id, after.sink); err != nil {
		t.Fatal(err)
	}
	if got, want := after.list(), []Kind{KindBuilding, KindPushed, KindDone}; !reflect.DeepEqual(got, want) {
		t.Errorf("events watched after the build = %v, want %v", got, want)
	}
	if _, err := p.Watch(context.Background(), "nope", nil); ClassOf(err) != ClassNotFound {
		t.Errorf("unknown id: err = %v, want not found", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	for name, opt := range map[string]Option{
		"nil lookup": WithLookup(nil), "nil builder": WithBuilder(nil), "nil locker": WithLocker(nil),
		"negative timeout": WithBuildTimeout(-1), "negative ttl": WithFailureTTL(-1),
		"negative builds": WithMaxBuilds(-1), "negative queue": WithMaxQueue(-1), "nil context": WithContext(nil), //lint:ignore SA1012 the option must refuse a nil context
	} {
		if _, err := New(WithLookup(newFakeRegistry()), opt); err == nil {
			t.Errorf("%s: New accepted it", name)
		}
	}
	if _, err := New(); err == nil {
		t.Error("New without a lookup succeeded")
	}
}

func contains(ks []Kind, k Kind) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}

func TestRegistryCacheIsOnForPushesByDefault(t *testing.T) {
	for name, tc := range map[string]struct {
		opts []Option
		want bool
	}{
		"default":   {nil, true},
		"off":       {[]Option{WithRegistryCache(builder.CacheOff, "")}, false},
		"elsewhere": {[]Option{WithRegistryCache(builder.CacheAuto, "cache.example/ci")}, true},
	} {
		reg := newFakeRegistry()
		b := &fakeBuilder{reg: reg}
		p := newTestPipeline(t, reg, b, tc.opts...)
		if _, err := p.Ensure(context.Background(), image(testRef), Request{}); err != nil {
			t.Fatal(err)
		}
		o := b.builds()[0]
		if got := len(o.CacheImports) > 0 && len(o.CacheExports) > 0; got != tc.want {
			t.Errorf("%s: cache imports %v exports %v, want them: %v", name, o.CacheImports, o.CacheExports, tc.want)
		}
		if name == "elsewhere" && !strings.HasPrefix(o.CacheExports[0], "cache.example/ci/") {
			t.Errorf("%s: exports %v, want them under cache.example/ci", name, o.CacheExports)
		}
	}
}

func TestJoinFollowsARunningBuildOnly(t *testing.T) {
	reg := newFakeRegistry()
	b := &fakeBuilder{reg: reg, gate: make(chan struct{}), start: make(chan string, 1)}
	p := newTestPipeline(t, reg, b)
	ref := image(testRef).Identity.Ref
	tag, _ := name.NewTag(ref)
	if _, err := p.Join(context.Background(), tag, Request{}); !errors.Is(err, ErrNoBuild) {
		t.Fatalf("Join with no build: %v, want ErrNoBuild", err)
	}
	started := make(chan error, 1)
	go func() {
		_, err := p.Ensure(context.Background(), image(testRef), Request{})
		started <- err
	}()
	<-b.start
	done := make(chan *Result, 1)
	in := make(arrivals, 1)
	go func() {
		r, err := p.Join(context.Background(), tag, Request{Sink: in.sink(nil)})
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	in.await(t, 1)
	close(b.gate)
	if r := <-done; r == nil || r.Outcome != OutcomeJoined || r.Digest != digestOf(testRef) {
		t.Errorf("Join = %+v, want joined", r)
	}
	if err := <-started; err != nil {
		t.Errorf("the build joined: %v", err)
	}
	if len(b.builds()) != 1 {
		t.Errorf("%d builds, want 1", len(b.builds()))
	}
}

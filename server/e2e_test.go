package server_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	apiv1 "github.com/ispec-dev/ispec/api/ispec/v1"
	"github.com/ispec-dev/ispec/builder"
	"github.com/ispec-dev/ispec/cache"
	"github.com/ispec-dev/ispec/client"
	"github.com/ispec-dev/ispec/ensure"
	"github.com/ispec-dev/ispec/internal/testenv"
	"github.com/ispec-dev/ispec/locker"
	"github.com/ispec-dev/ispec/server"
	"github.com/ispec-dev/ispec/spec"
)

// harness is a server on a loopback port over the real BuildKit and
// registry of the development environment.
type harness struct {
	env        *testenv.Env
	addr       string
	p          *ensure.Pipeline
	reg        *prometheus.Registry
	tokens     *server.TokenFile // when setup.tokens is set
	tokensPath string
}

type setup struct {
	tokens     []string // lines of the token file; none: no authentication
	tokenClock func() time.Time
	allowed    []string
	maxBuilds  int
	maxQueue   int
	failureTTL time.Duration
	uploadDir  string   // default a new temporary folder
	lookups    []string // server.WithAllowedLookupRegistries
}

func start(t testing.TB, su setup) *harness {
	t.Helper()
	env := testenv.Load(t)
	remote, err := cache.NewRemote()
	if err != nil {
		t.Fatal(err)
	}
	b, err := builder.New(context.Background(), builder.Options{Addr: env.BuildkitHost})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	opts := []ensure.Option{ensure.WithLookup(remote), ensure.WithBuilder(b), ensure.WithFailureTTL(su.failureTTL)}
	if su.maxBuilds > 0 {
		opts = append(opts, ensure.WithMaxBuilds(su.maxBuilds), ensure.WithMaxQueue(su.maxQueue))
	}
	p, err := ensure.New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	if su.uploadDir == "" {
		su.uploadDir = t.TempDir()
	}
	reg := prometheus.NewRegistry()
	lk, err := locker.New(remote, locker.WithPython(b))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(p, remote, server.WithAllowedRegistries(su.allowed...), server.WithAllowedLookupRegistries(su.lookups...),
		server.WithUploadDir(su.uploadDir), server.WithRegisterer(reg), server.WithLocker(lk))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	var (
		tf    *server.TokenFile
		path  string
		aopts []server.AuthOption
	)
	if len(su.tokens) > 0 {
		path = filepath.Join(t.TempDir(), "tokens")
		if err := os.WriteFile(path, []byte(strings.Join(su.tokens, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		var topts []server.TokenFileOption
		if su.tokenClock != nil {
			topts = append(topts, server.WithClock(su.tokenClock))
		}
		if tf, err = server.OpenTokenFile(path, topts...); err != nil {
			t.Fatal(err)
		}
		aopts = append(aopts, server.WithTokenFile(tf))
	}
	addr := serveLoopback(t, srv, aopts...)
	return &harness{env: env, addr: addr, p: p, reg: reg, tokens: tf, tokensPath: path}
}

// serveLoopback serves srv's gRPC API on a free loopback port, with
// authentication from opts, until the test ends; it returns the address.
func serveLoopback(t testing.TB, srv *server.Server, opts ...server.AuthOption) string {
	t.Helper()
	a, err := server.NewAuth(opts...)
	if err != nil {
		t.Fatal(err)
	}
	gs, _, err := srv.GRPC(a, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(lis)
	t.Cleanup(gs.Stop)
	return lis.Addr().String()
}

func (h *harness) client(t testing.TB, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.Dial(h.addr, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// newSpec writes a spec of a new image (a unique name) and loads it.
func (h *harness) newSpec(t testing.TB, body string) *spec.Image {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "src"), 0o755)
	os.WriteFile(filepath.Join(dir, "src", "app.py"), []byte("print('hello')\n"), 0o644)
	text := fmt.Sprintf("name: srv-%d\nregistry: %s/e2e\nbase_image: %s\nsource_root: src\n%s", time.Now().UnixNano(), h.env.Registry, h.env.BaseBusybox, body)
	p := filepath.Join(dir, "spec.yaml")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	img, err := spec.Load(context.Background(), p, spec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func repoOf(img *spec.Image) string {
	return img.Identity.Registry + "/" + img.Identity.Repository
}

func TestFiftyCallersShareOneBuild(t *testing.T) {
	h := start(t, setup{})
	c := h.client(t)
	img := h.newSpec(t, "commands: [\"sleep 4; echo built > /built.txt\"]\n")
	const n = 50
	var wg sync.WaitGroup
	results := make([]*ensure.Result, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = c.Build(context.Background(), img, ensure.Request{}, apiv1.ProgressDetail_PROGRESS_DETAIL_STEPS)
		}()
	}
	wg.Wait()
	outcomes := map[ensure.Outcome]int{}
	for i := range results {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		outcomes[results[i].Outcome]++
		if results[i].Digest != results[0].Digest {
			t.Errorf("caller %d got %s, caller 0 %s", i, results[i].Digest, results[0].Digest)
		}
	}
	if outcomes[ensure.OutcomeBuilt] != 1 || outcomes[ensure.OutcomeJoined] != n-1 {
		t.Errorf("outcomes %v, want 1 built and %d joined", outcomes, n-1)
	}
	if puts := testenv.CountManifestPuts(t, h.env.RegistryLog, repoOf(img)); puts != 1 {
		t.Errorf("%d manifest PUTs for %s, want 1", puts, repoOf(img))
	}
}

func TestCallerThatLeavesDoesNotStopTheBuild(t *testing.T) {
	h := start(t, setup{})
	c := h.client(t)
	// A nonce keeps BuildKit's cache from answering at once.
	img := h.newSpec(t, fmt.Sprintf("commands: [\"sleep 3; echo %d > /built.txt\"]\n", time.Now().UnixNano()))
	ctx, cancel := context.WithCancel(context.Background())
	building := make(chan struct{})
	var once sync.Once
	leaver := make(chan error, 1)
	go func() {
		_, err := c.Build(ctx, img, ensure.Request{Sink: func(ev ensure.Event) {
			if ev.Kind == ensure.KindBuilding {
				once.Do(func() { close(building) })
			}
		}}, apiv1.ProgressDetail_PROGRESS_DETAIL_NONE)
		leaver <- err
	}()
	<-building
	stayer := make(chan *ensure.Result, 1)
	joined := make(chan struct{})
	var joinedOnce sync.Once
	go func() {
		r, err := c.Build(context.Background(), img, ensure.Request{Sink: func(ev ensure.Event) {
			if ev.Kind == ensure.KindJoined {
				joinedOnce.Do(func() { close(joined) })
			}
		}}, apiv1.ProgressDetail_PROGRESS_DETAIL_NONE)
		if err != nil {
			t.Error(err)
		}
		stayer <- r
	}()
	// The first caller leaves only once the second has joined its build.
	select {
	case <-joined:
	case r := <-stayer:
		t.Fatalf("the second caller ended before it joined: %+v", r)
	case <-time.After(time.Minute):
		t.Fatal("the second caller did not join the running build within a minute")
	}
	cancel()
	if err := <-leaver; err == nil {
		t.Error("the cancelled caller got a result")
	}
	r := <-stayer
	if r == nil || r.Outcome != ensure.OutcomeJoined {
		t.Fatalf("the remaining caller got %+v, want joined", r)
	}
	if puts := testenv.CountManifestPuts(t, h.env.RegistryLog, repoOf(img)); puts != 1 {
		t.Errorf("%d manifest PUTs, want 1", puts)
	}
}

func TestFailingSpecIsBuiltOnceForTenCallers(t *testing.T) {
	h := start(t, setup{failureTTL: time.Minute})
	c := h.client(t)
	img := h.newSpec(t, "commands: [\"sleep 1; echo the tail line; exit 3\"]\n")
	const n = 10
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.Build(context.Background(), img, ensure.Request{}, apiv1.ProgressDetail_PROGRESS_DETAIL_NONE)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Class != ensure.ClassFailed {
			t.Fatalf("caller %d: err = %v, want a failed build", i, err)
		}
		if err.Error() != errs[0].Error() {
			t.Errorf("caller %d got %q, caller 0 %q", i, err, errs[0])
		}
	}
	if !strings.Contains(errs[0].Error(), "the tail line") || !strings.Contains(errs[0].Error(), "exit code: 3") {
		t.Errorf("failure %q lacks the step's exit code and log tail", errs[0])
	}
	builds := h.p.Builds()
	if len(builds) != 1 || builds[0].Callers != n || builds[0].State != ensure.StateFailed {
		t.Errorf("builds %+v, want one failed build with %d callers", builds, n)
	}
	if puts := testenv.CountManifestPuts(t, h.env.RegistryLog, repoOf(img)); puts != 0 {
		t.Errorf("%d manifest PUTs, want none", puts)
	}
}

func TestTokens(t *testing.T) {
	h := start(t, setup{tokens: []string{"first-token", "second-token"}})
	img := h.newSpec(t, "")
	for name, tok := range map[string]string{"missing": "", "wrong": "nope"} {
		var opts []client.Option
		if tok != "" {
			opts = append(opts, client.WithToken(tok))
		}
		_, err := h.client(t, opts...).Build(context.Background(), img, ensure.Request{}, apiv1.ProgressDetail_PROGRESS_DETAIL_NONE)
		if code := statusOf(err); code != codes.Unauthenticated {
			t.Errorf("%s token: err = %v, want UNAUTHENTICATED", name, err)
		}
	}
	if _, err := h.client(t, client.WithToken("second-token")).Build(context.Background(), img, ensure.Request{}, apiv1.ProgressDetail_PROGRESS_DETAIL_NONE); err != nil {
		t.Errorf("valid token: %v", err)
	}
	// Health needs no token.
	conn, err := grpc.NewClient(h.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	resp, err := grpc_health_v1.NewHealthClient(conn).Check(context.Background(), &grpc_health_v1.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != grpc_health_v1.HealthCheckResponse_SERVING {
		t.Errorf("health = %v, %v", resp, err)
	}
	// A raw call with a wrong token: UNAUTHENTICATED.
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer first-tokeX")
	_, err = apiv1.NewImageServiceClient(conn).ListBuilds(ctx, &apiv1.ListBuildsRequest{})
	if status.Code(err) != codes.Unauthenticated {
		t.Errorf("raw call: %v, want UNAUTHENTICATED", err)
	}
}

func TestRegistryOffTheAllowlistIsDenied(t *testing.T) {
	h := start(t, setup{allowed: []string{"registry.example.com"}})
	img := h.newSpec(t, "")
	_, err := h.client(t).Build(context.Background(), img, ensure.Request{}, apiv1.ProgressDetail_PROGRESS_DETAIL_NONE)
	if statusOf(err) != codes.PermissionDenied || ensure.ClassOf(err) != ensure.ClassDenied {
		t.Errorf("err = %v, want PERMISSION_DENIED", err)
	}
	if len(h.p.Builds()) != 0 || testenv.CountManifestPuts(t, h.env.RegistryLog, repoOf(img)) != 0 {
		t.Error("something was built or pushed")
	}
}

func TestQueueFullIsResourceExhausted(t *testing.T) {
	h := start(t, setup{maxBuilds: 1, maxQueue: 0})
	c := h.client(t)
	slow := h.newSpec(t, "commands: [\"sleep 3\"]\n")
	started := make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	go func() {
		_, err := c.Build(context.Background(), slow, ensure.Request{Sink: func(ev ensure.Event) {
			if ev.Kind == ensure.KindAccepted {
				once.Do(func() { close(started) })
			}
		}}, apiv1.ProgressDetail_PROGRESS_DETAIL_NONE)
		done <- err
	}()
	<-started
	other := h.newSpec(t, "commands: [\"true\"]\n")
	_, err := c.Build(context.Background(), other, ensure.Request{}, apiv1.ProgressDetail_PROGRESS_DETAIL_NONE)
	if statusOf(err) != codes.ResourceExhausted || ensure.ClassOf(err) != ensure.ClassBusy {
		t.Errorf("err = %v, want RESOURCE_EXHAUSTED", err)
	}
	if err := <-done; err != nil {
		t.Errorf("the running build: %v", err)
	}
}

func TestRegistryDownIsUnavailable(t *testing.T) {
	h := start(t, setup{})
	img := h.newSpec(t, "")
	img.Spec.Registry = "127.0.0.1:1"
	dir := t.TempDir()
	p := filepath.Join(dir, "spec.yaml")
	os.WriteFile(p, []byte("name: down\nregistry: 127.0.0.1:1/e2e\nbase_image: "+h.env.BaseBusybox+"\n"), 0o644)
	down, err := spec.Load(context.Background(), p, spec.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = h.client(t).Build(context.Background(), down, ensure.Request{}, apiv1.ProgressDetail_PROGRESS_DETAIL_NONE)
	if statusOf(err) != codes.Unavailable || ensure.ClassOf(err) != ensure.ClassUnavailable {
		t.Errorf("err = %v, want UNAVAILABLE", err)
	}
	if len(h.p.Builds()) != 0 {
		t.Error("a build was started although the registry could not say")
	}
}

func TestInvalidSpecNamesFileLineAndField(t *testing.T) {
	h := start(t, setup{})
	conn, err := grpc.NewClient(h.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for name, tc := range map[string]struct {
		spec  string
		line  int32
		field string
	}{
		"bad package":   {"name: a\nregistry: r.example\npackages: ['flask', 'not a req!']\n", 3, "packages[1]"},
		"unknown field": {"name: a\nregistry: r.example\npackages: [x]\napt_pakages: [git]\n", 4, ""},
		"missing file":  {"name: a\nregistry: r.example\nrequirements: reqs.txt\n", 3, "requirements"},
	} {
		stream, err := apiv1.NewImageServiceClient(conn).Build(context.Background(), &apiv1.BuildRequest{Input: &apiv1.SpecInput{SpecPath: "dir/spec.yaml", Spec: []byte(tc.spec),
			Files: []*apiv1.File{{Path: "dir", Kind: apiv1.FileKind_FILE_KIND_DIRECTORY, Mode: 0o755}}}})
		if err == nil {
			_, err = stream.Recv()
		}
		st := status.Convert(err)
		if st.Code() != codes.InvalidArgument {
			t.Errorf("%s: %v, want INVALID_ARGUMENT", name, err)
			continue
		}
		var got *apiv1.SpecError
		for _, d := range st.Details() {
			if se, ok := d.(*apiv1.SpecErrors); ok && len(se.GetErrors()) > 0 {
				got = se.GetErrors()[0]
			}
		}
		if got == nil || got.GetFile() != "dir/spec.yaml" || got.GetLine() != tc.line || got.GetField() != tc.field || (tc.field == "" && !strings.Contains(got.GetMessage(), "apt_pakages")) {
			t.Errorf("%s: spec error %v, want dir/spec.yaml:%d %s", name, got, tc.line, tc.field)
		}
	}
}

func TestExistingImageUploadsNoFileBytes(t *testing.T) {
	h := start(t, setup{})
	c := h.client(t)
	// The spec's source_root holds a file whose bytes the first build
	// uploads.
	img := h.newSpec(t, "")
	before := h.uploadBytes(t)
	first, err := c.Build(context.Background(), img, ensure.Request{}, apiv1.ProgressDetail_PROGRESS_DETAIL_NONE)
	if err != nil {
		t.Fatal(err)
	}
	if n := h.uploadBytes(t) - before; n == 0 {
		t.Fatal("the first build uploaded no file bytes; want its source file's")
	}
	before = h.uploadBytes(t)
	again, err := c.Build(context.Background(), img, ensure.Request{}, apiv1.ProgressDetail_PROGRESS_DETAIL_NONE)
	if err != nil || again.Outcome != ensure.OutcomeFound || again.Digest != first.Digest {
		t.Fatalf("second build = %+v, %v; want found %s", again, err, first.Digest)
	}
	if n := h.uploadBytes(t) - before; n != 0 {
		t.Errorf("building the existing image uploaded %.0f file bytes, want none", n)
	}
	res, err := c.Lookup(context.Background(), []*spec.Image{img})
	if err != nil || res[0].State != cache.Exists || res[0].Digest != first.Digest {
		t.Errorf("lookup = %+v, %v", res, err)
	}
}

func statusOf(err error) codes.Code {
	var ce *client.Error
	if errors.As(err, &ce) {
		return ce.Code
	}
	return status.Code(err)
}

func TestWatchAndListBuilds(t *testing.T) {
	h := start(t, setup{})
	c := h.client(t)
	img := h.newSpec(t, "commands: [\"sleep 2; echo watched > /w.txt\"]\n")
	ids := make(chan string, 1)
	done := make(chan *ensure.Result, 1)
	go func() {
		r, err := c.Build(context.Background(), img, ensure.Request{Sink: func(ev ensure.Event) {
			if ev.Kind == ensure.KindAccepted {
				ids <- ev.BuildID
			}
		}}, apiv1.ProgressDetail_PROGRESS_DETAIL_NONE)
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	id := <-ids
	conn, err := grpc.NewClient(h.addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	api := apiv1.NewImageServiceClient(conn)
	list, err := api.ListBuilds(context.Background(), &apiv1.ListBuildsRequest{ActiveOnly: true})
	if err != nil || len(list.GetBuilds()) != 1 || list.GetBuilds()[0].GetBuildId() != id || list.GetBuilds()[0].GetState() != apiv1.BuildState_BUILD_STATE_RUNNING {
		t.Errorf("running builds = %v, %v; want %s running", list, err, id)
	}
	built := <-done
	// A watcher that comes after the build ended still gets it from the start.
	stream, err := api.Watch(context.Background(), &apiv1.WatchRequest{BuildId: id, Progress: apiv1.ProgressDetail_PROGRESS_DETAIL_STEPS})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	var last *apiv1.BuildEvent
	for {
		ev, err := stream.Recv()
		if err != nil {
			break
		}
		kinds = append(kinds, fmt.Sprintf("%T", ev.GetEvent()))
		last = ev
	}
	if len(kinds) < 3 || !strings.Contains(kinds[0], "Building") || last.GetDone().GetDigest() != built.Digest.String() {
		t.Errorf("watched %v ending in %v; want building first and done with %s", kinds, last, built.Digest)
	}
	unknown, err := api.Watch(context.Background(), &apiv1.WatchRequest{BuildId: "nope"})
	if err == nil {
		_, err = unknown.Recv()
	}
	if status.Code(err) != codes.NotFound {
		t.Errorf("unknown build id: %v, want NOT_FOUND", err)
	}
	list, err = api.ListBuilds(context.Background(), &apiv1.ListBuildsRequest{})
	if err != nil || len(list.GetBuilds()) != 1 || list.GetBuilds()[0].GetState() != apiv1.BuildState_BUILD_STATE_SUCCEEDED || list.GetBuilds()[0].GetDigest() != built.Digest.String() {
		t.Errorf("recent builds = %v, %v", list, err)
	}
}

// Package server is the gRPC adapter of the build-once pipeline
// (ispec.v1.ImageService): it loads what callers upload, checks their
// rights and limits, runs the pipeline, and streams its events. Errors map
// to status codes from one table of the pipeline's error classes.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	apiv1 "github.com/ispec-dev/ispec/api/ispec/v1"
	"github.com/ispec-dev/ispec/blobstore"
	"github.com/ispec-dev/ispec/cache"
	"github.com/ispec-dev/ispec/ensure"
	"github.com/ispec-dev/ispec/locker"
	"github.com/ispec-dev/ispec/spec"
	"github.com/ispec-dev/ispec/wire"
)

// Server implements ispec.v1.ImageService over a pipeline.
type Server struct {
	apiv1.UnimplementedImageServiceServer

	p         *ensure.Pipeline
	lookup    ensure.Lookup
	specOpts  spec.Options
	allowed   []string
	lookups   registryList // WithAllowedLookupRegistries
	locker    *locker.Locker
	lockSlots chan struct{} // WithMaxLocks
	limits    ensure.Limits
	uploadDir string
	blobOpts  []blobstore.Option
	work      *workDir
	log       *slog.Logger
	reg       prometheus.Registerer
	m         *metrics
	draining  atomic.Bool

	sendTimeout time.Duration
	maxStreams  uint32
}

// New returns a server that builds with p and answers lookups with
// lookup (the pipeline's own lookup, normally). It makes its own folder
// under the upload dir (see WithUploadDir), after removing the folders of
// servers that died there; Close removes it.
func New(p *ensure.Pipeline, lookup ensure.Lookup, opts ...Option) (*Server, error) {
	if p == nil || lookup == nil {
		return nil, errors.New("server: a pipeline and a lookup are required")
	}
	s := &Server{p: p, lookup: lookup, limits: ensure.DefaultLimits(), log: slog.New(slog.DiscardHandler),
		sendTimeout: time.Minute, maxStreams: 1024, lockSlots: make(chan struct{}, 4)}
	for _, opt := range opts {
		if err := opt(s); err != nil {
			return nil, fmt.Errorf("server: %w", err)
		}
	}
	s.lookup = recoveringLookup{next: lookup, log: s.log}
	m, err := newMetrics(s.reg, p)
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s.m = m
	if s.work, err = openWorkDir(s.uploadDir, s.blobOpts...); err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	return s, nil
}

// Close removes the server's folder: its blobs and uploads. Call it once
// no call is served.
func (s *Server) Close() { s.work.close() }

// Drain makes the server refuse new builds (UNAVAILABLE); running builds
// go on, their callers get their results, and a caller of a tag that is
// still building joins it.
func (s *Server) Drain() { s.draining.Store(true) }

// Idle reports whether no build runs or waits.
func (s *Server) Idle() bool {
	st := s.p.Stats()
	return st.Running == 0 && st.Queued == 0
}

// errStatus turns a pipeline error into a status: the code of its class,
// with the spec's field errors as details.
func errStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := Code(err)
	if APIClass(err) == apiv1.ErrorClass_ERROR_CLASS_UNSUPPORTED_PLATFORM {
		code = codes.FailedPrecondition
	}
	st := status.New(code, shortMessage(err.Error(), maxStatus))
	if fes := SpecErrors(err); len(fes) > 0 {
		if len(fes) > maxDetails {
			fes = fes[:maxDetails]
		}
		for _, fe := range fes {
			fe.File, fe.Field, fe.Message = ensure.Short(fe.File), ensure.Short(fe.Field), shortMessage(fe.Message, maxDetail)
		}
		if d, derr := st.WithDetails(&apiv1.SpecErrors{Errors: fes}); derr == nil {
			st = d
		}
	}
	return st.Err()
}

// Bounds of what a status repeats, so that it fits gRPC's headers: its
// message, each spec error's message, and how many spec errors it
// carries.
const (
	maxStatus  = 1024
	maxDetail  = 256
	maxDetails = 10
)

// shortMessage cuts msg to at most max bytes.
func shortMessage(msg string, max int) string {
	if len(msg) <= max {
		return msg
	}
	return strings.ToValidUTF8(msg[:max-len(" […]")], "") + " […]"
}

// load materializes a caller's upload and loads its spec. With build, the
// content of files sent without it comes from the blob store (pinned
// until the upload is released), and a blob the store lacks fails the
// call (FAILED_PRECONDITION naming the files); otherwise their digests
// alone are used, and the upload lists the files whose blobs the store
// lacks (needed).
func (s *Server) load(ctx context.Context, in *apiv1.SpecInput, build bool) (*spec.Image, *upload, error) {
	return s.loadWith(ctx, in, build, s.specOpts)
}

// loadWith is load with the spec options opts.
func (s *Server) loadWith(ctx context.Context, in *apiv1.SpecInput, build bool, opts spec.Options) (*spec.Image, *upload, error) {
	if in == nil || in.GetSpecPath() == "" {
		return nil, nil, status.Error(codes.InvalidArgument, "input: a spec_path and the spec's content are required")
	}
	if len(in.GetSpec()) > spec.MaxFileSize {
		return nil, nil, status.Errorf(codes.InvalidArgument, "%s: the spec is larger than the %d byte limit", ensure.Short(in.GetSpecPath()), spec.MaxFileSize)
	}
	up := ensure.Upload{SpecPath: in.GetSpecPath(), Spec: in.GetSpec()}
	var n int64
	var digests []blobstore.Digest
	var paths []string
	for _, f := range in.GetFiles() {
		ef := fileFromAPI(f)
		up.Files = append(up.Files, ef)
		n += int64(len(f.GetContent()))
		if ef.Kind == spec.KindFile && ef.Content == nil {
			d, err := blobstore.ParseDigest(ef.Digest, ef.Size)
			if err != nil {
				return nil, nil, errStatus(&spec.FieldError{File: ensure.Short(ef.Path), Msg: err.Error()})
			}
			digests, paths = append(digests, d), append(paths, ef.Path)
		}
	}
	s.m.upload.Add(float64(n))
	u := &upload{unpin: func() {}}
	if build {
		release, missing := s.work.blobs.Pin(digests)
		if len(missing) > 0 {
			release()
			return nil, nil, missingPaths(pathsOf(missing, digests, paths))
		}
		up.Blobs, u.unpin = storeBlobs{s.work.blobs}, release
	} else if len(digests) > 0 {
		u.needed = pathsOf(s.work.blobs.Missing(digests), digests, paths)
	}
	img, _, cleanup, err := ensure.LoadUpload(ctx, up, s.limits, s.work.uploads, opts)
	if err != nil {
		u.unpin()
		return nil, nil, errStatus(err)
	}
	u.cleanup = func() { cleanup(); u.unpin() }
	u.n.Store(1)
	return img, u, nil
}

// pathsOf returns the paths of the files whose digests are in missing.
func pathsOf(missing, digests []blobstore.Digest, paths []string) []string {
	lacks := map[blobstore.Digest]bool{}
	for _, d := range missing {
		lacks[d] = true
	}
	var out []string
	for i, d := range digests {
		if lacks[d] {
			out = append(out, paths[i])
		}
	}
	return out
}

// emptyDigest is the digest of no bytes.
const emptyDigest = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

func fileFromAPI(f *apiv1.File) ensure.File {
	out := ensure.File{Path: f.GetPath(), Mode: f.GetMode(), Size: f.GetSize(), Digest: f.GetDigest(), Target: f.GetTarget(), Content: f.GetContent()}
	switch f.GetKind() {
	case apiv1.FileKind_FILE_KIND_DIRECTORY:
		out.Kind = spec.KindDir
	case apiv1.FileKind_FILE_KIND_SYMLINK:
		out.Kind = spec.KindSymlink
	case apiv1.FileKind_FILE_KIND_REGULAR:
		// Protobuf reads empty bytes as nil: without a digest, or with
		// the empty content's, no bytes is an empty file, not a blob.
		out.Kind = spec.KindFile
		if out.Content == nil && (out.Digest == "" || out.Digest == emptyDigest) {
			out.Content = []byte{}
		}
	}
	return out
}

// upload is a caller's files on disk, removed when neither the call nor
// a build it started needs them.
type upload struct {
	n       atomic.Int32
	cleanup func()
	unpin   func()   // unpins its blobs
	needed  []string // files whose blobs the store lacks (not for a build)
}

func (u *upload) retain() func() {
	u.n.Add(1)
	return u.release
}

func (u *upload) release() {
	if u.n.Add(-1) == 0 {
		u.cleanup()
	}
}

// allow checks that the server may push img (and its parents).
func (s *Server) allow(img *spec.Image) error {
	if len(s.allowed) == 0 {
		return nil
	}
	for i := img; i != nil; i = i.Parent {
		reg := strings.ToLower(i.Spec.Registry)
		ok := false
		for _, a := range s.allowed {
			if reg == a || strings.HasPrefix(reg, a+"/") {
				ok = true
				break
			}
		}
		if !ok {
			return status.Errorf(codes.PermissionDenied, "%s: this server does not push to registry %q (allowed: %s)", i.File, i.Spec.Registry, strings.Join(s.allowed, ", "))
		}
	}
	return nil
}

// Resolve implements ImageService: the identity of a spec, without
// network.
func (s *Server) Resolve(ctx context.Context, req *apiv1.ResolveRequest) (*apiv1.ResolveResponse, error) {
	img, up, err := s.load(ctx, req.GetInput(), false)
	if err != nil {
		return nil, err
	}
	defer up.release()
	out := &apiv1.ResolveResponse{Image: Identity(img), HashInput: img.Document}
	for p := img.Parent; p != nil; p = p.Parent {
		out.Parents = append(out.Parents, Identity(p))
	}
	return out, nil
}

// Lookup implements ImageService: exists, absent or unknown, per item.
func (s *Server) Lookup(ctx context.Context, req *apiv1.LookupRequest) (*apiv1.LookupResponse, error) {
	if len(req.GetItems()) > 1000 {
		return nil, status.Errorf(codes.InvalidArgument, "items: %d asked; at most 1000 per call", len(req.GetItems()))
	}
	refs := make([]name.Tag, len(req.GetItems()))
	ids := make([]*apiv1.ImageIdentity, len(req.GetItems()))
	for i, it := range req.GetItems() {
		var ref string
		switch x := it.GetItem().(type) {
		case *apiv1.LookupItem_Ref:
			ref = x.Ref
		case *apiv1.LookupItem_Spec:
			img, up, err := s.load(ctx, x.Spec, false)
			if err != nil {
				return nil, err
			}
			up.release()
			t, err := ensure.Tag(img)
			if err != nil {
				return nil, errStatus(err)
			}
			ref, ids[i] = t.Name(), Identity(img)
		default:
			return nil, status.Errorf(codes.InvalidArgument, "items[%d]: a spec or a ref is required", i)
		}
		t, err := name.NewTag(ref, name.StrictValidation)
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "items[%d]: %q is not a tag reference: %v", i, ref, err)
		}
		if err := s.allowLookup(fmt.Sprintf("items[%d]", i), t); err != nil {
			return nil, err
		}
		refs[i] = t
	}
	out := &apiv1.LookupResponse{}
	for i, r := range cache.LookupAll(ctx, s.lookup, refs, 0) {
		lr := &apiv1.LookupResult{Ref: r.Ref.Name(), Image: ids[i], Error: r.Message}
		switch r.State {
		case cache.Exists:
			lr.State, lr.Digest = apiv1.LookupState_LOOKUP_STATE_EXISTS, r.Digest.String()
			lr.Source = apiv1.LookupSource_LOOKUP_SOURCE_REGISTRY
			if r.FromIndex {
				lr.Source = apiv1.LookupSource_LOOKUP_SOURCE_INDEX
			}
		case cache.Absent:
			lr.State = apiv1.LookupState_LOOKUP_STATE_ABSENT
		default:
			lr.State = apiv1.LookupState_LOOKUP_STATE_UNKNOWN
			if r.Err != nil {
				lr.Error = r.Err.Error()
			}
		}
		s.m.lookups.WithLabelValues(r.State.String()).Inc()
		out.Results = append(out.Results, lr)
	}
	return out, nil
}

// Build implements ImageService: the pipeline's events, streamed.
func (s *Server) Build(req *apiv1.BuildRequest, stream apiv1.ImageService_BuildServer) error {
	ctx := stream.Context()
	img, up, err := s.load(ctx, req.GetInput(), !req.GetFilesOmitted())
	if err != nil {
		return err
	}
	defer up.release()
	if err := s.allow(img); err != nil {
		return err
	}
	if err := s.allowReads(img); err != nil {
		return err
	}
	opts := req.GetOptions()
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	snd := newSender(stream.Send, s.sendTimeout, stop)
	defer snd.close()
	send := func(ev ensure.Event) { snd.send(EventToAPI(ev, opts.GetProgress())) }
	log := s.log.With("ref", img.Identity.Ref, "caller", Caller(ctx))
	if s.draining.Load() {
		if err := s.joinDraining(ctx, img, ensure.Request{Force: opts.GetForce(), NoCache: opts.GetNoCache(), Sink: send, Caller: Caller(ctx)}); err != nil {
			return err
		}
		return snd.err
	}
	if req.GetFilesOmitted() {
		// The caller left out its files' bytes: tell it whether they are
		// needed.
		sendAPI := func(ev *apiv1.BuildEvent) error { snd.send(ev); return snd.err }
		if err := s.needFiles(ctx, img, up.needed, opts.GetForce(), opts.GetNoCache(), sendAPI, send); err != nil {
			return err
		}
		return snd.err
	}
	start := time.Now()
	res, err := s.p.Ensure(ctx, img, ensure.Request{Force: opts.GetForce(), NoCache: opts.GetNoCache(), Sink: send, Retain: up.retain, Caller: Caller(ctx)})
	if snd.err != nil {
		log.Info("caller stopped reading its events; its stream is ended and the build goes on for others", "error", snd.err)
		return snd.err
	}
	if err != nil {
		s.m.builds.WithLabelValues("failed").Inc()
		if ctx.Err() != nil {
			log.Info("caller left; the build goes on for others", "duration", time.Since(start))
			return status.FromContextError(ctx.Err()).Err()
		}
		log.Warn("build failed", "class", ensure.ClassOf(err).String(), "error", err, "duration", time.Since(start))
		return errStatus(err)
	}
	s.m.builds.WithLabelValues(res.Outcome.String()).Inc()
	if res.Outcome == ensure.OutcomeJoined {
		s.m.joins.Inc()
	}
	if res.Outcome == ensure.OutcomeBuilt {
		s.m.duration.Observe(res.Duration.Seconds())
	}
	log.Info("image ensured", "build_id", res.BuildID, "outcome", res.Outcome.String(), "digest", res.Digest.String(), "duration", res.Duration,
		"fence", res.Fence, "daemon", res.Daemon)
	return snd.err
}

// joinDraining answers a caller of a draining server: the build of its
// tag that still runs here, joined; else UNAVAILABLE.
func (s *Server) joinDraining(ctx context.Context, img *spec.Image, req ensure.Request) error {
	t, err := ensure.Tag(img)
	if err != nil {
		return errStatus(err)
	}
	res, err := s.p.Join(ctx, t, req)
	switch {
	case errors.Is(err, ensure.ErrNoBuild):
		return status.Error(codes.Unavailable, "the server is shutting down and accepts no new builds; call another replica or retry")
	case err != nil:
		if ctx.Err() != nil {
			return status.FromContextError(ctx.Err()).Err()
		}
		s.m.builds.WithLabelValues("failed").Inc()
		return errStatus(err)
	}
	s.m.builds.WithLabelValues(res.Outcome.String()).Inc()
	s.m.joins.Inc()
	return nil
}

// needFiles answers a build request without file bytes: the build of the
// tag that runs, joined; found (done); or files_needed.
func (s *Server) needFiles(ctx context.Context, img *spec.Image, needed []string, force, noCache bool, sendAPI func(*apiv1.BuildEvent) error, send ensure.Sink) error {
	t, err := ensure.Tag(img)
	if err != nil {
		return errStatus(err)
	}
	if !force {
		// A build of the tag runs (another caller sent the files): join
		// it, with no bytes from this caller.
		res, err := s.p.Join(ctx, t, ensure.Request{NoCache: noCache, Sink: send, Caller: Caller(ctx)})
		switch {
		case err == nil:
			s.m.builds.WithLabelValues(res.Outcome.String()).Inc()
			s.m.joins.Inc()
			return nil
		case !errors.Is(err, ensure.ErrNoBuild):
			if ctx.Err() != nil {
				return status.FromContextError(ctx.Err()).Err()
			}
			s.m.builds.WithLabelValues("failed").Inc()
			return errStatus(err)
		}
		res, err = s.p.Find(ctx, t, ensure.Request{Sink: send})
		switch {
		case err != nil:
			s.m.lookups.WithLabelValues(cache.Unknown.String()).Inc()
			return errStatus(err)
		case res != nil:
			s.m.lookups.WithLabelValues(cache.Exists.String()).Inc()
			s.m.builds.WithLabelValues(ensure.OutcomeFound.String()).Inc()
			return nil
		}
		s.m.lookups.WithLabelValues(cache.Absent.String()).Inc()
	}
	return sendAPI(&apiv1.BuildEvent{Ref: t.Name(), Time: timestamppb.Now(),
		Event: &apiv1.BuildEvent_FilesNeeded{FilesNeeded: &apiv1.FilesNeeded{Image: Identity(img), Paths: needed}}})
}

// Watch implements ImageService: a build's events from its start. A
// build the caller neither started nor joined is NOT_FOUND, as an unknown
// id is (ids are no oracle), unless the caller is an admin.
func (s *Server) Watch(req *apiv1.WatchRequest, stream apiv1.ImageService_WatchServer) error {
	ctx, stop := context.WithCancel(stream.Context())
	defer stop()
	who := callerOf(ctx)
	if !who.admin {
		b, ok := s.p.Build(req.GetBuildId())
		if !ok || !who.sees(b) {
			s.log.Info("watch refused: not the caller's build", "caller", who.name, "build_id", req.GetBuildId(), "known", ok)
			return errStatus(fmt.Errorf("build %s: %w", req.GetBuildId(), ensure.ErrNotFound))
		}
	}
	snd := newSender(stream.Send, s.sendTimeout, stop)
	defer snd.close()
	_, err := s.p.Watch(ctx, req.GetBuildId(), func(ev ensure.Event) { snd.send(EventToAPI(ev, req.GetProgress())) })
	if snd.err != nil {
		s.log.Info("watcher stopped reading its events; its stream is ended and the build goes on", "build_id", req.GetBuildId(), "caller", Caller(ctx), "error", snd.err)
		return snd.err
	}
	if err != nil {
		return errStatus(err)
	}
	return nil
}

// ListBuilds implements ImageService: running and recent builds the
// caller started or joined (an admin: every caller's), most recent first.
func (s *Server) ListBuilds(ctx context.Context, req *apiv1.ListBuildsRequest) (*apiv1.ListBuildsResponse, error) {
	who := callerOf(ctx)
	var builds []ensure.BuildInfo
	for _, b := range s.p.Builds() {
		if who.sees(b) {
			builds = append(builds, b)
		}
	}
	sort.Slice(builds, func(i, j int) bool { return builds[i].Started.After(builds[j].Started) })
	limit := int(req.GetLimit())
	if limit <= 0 {
		limit = 100
	}
	out := &apiv1.ListBuildsResponse{}
	for _, b := range builds {
		if len(out.Builds) == limit {
			break
		}
		if req.GetActiveOnly() && b.State != ensure.StateRunning {
			continue
		}
		bi := &apiv1.BuildInfo{BuildId: b.ID, Ref: b.Ref, Started: timestamppb.New(b.Started), Duration: durationpb.New(b.Duration), Callers: int32(b.Callers), Fence: b.Fence,
			StartedBy: b.StartedBy, JoinedBy: b.JoinedBy}
		switch b.State {
		case ensure.StateRunning:
			bi.State = apiv1.BuildState_BUILD_STATE_RUNNING
		case ensure.StateSucceeded:
			bi.State, bi.Outcome, bi.Digest = apiv1.BuildState_BUILD_STATE_SUCCEEDED, wire.OutcomeToAPI(b.Result.Outcome), b.Result.Digest.String()
			bi.Daemon, bi.PythonResolved = b.Result.Daemon, wire.PythonToAPI(b.Result.Python)
		case ensure.StateFailed:
			bi.State, bi.ErrorClass, bi.Error = apiv1.BuildState_BUILD_STATE_FAILED, APIClass(b.Err), b.Err.Error()
		}
		out.Builds = append(out.Builds, bi)
	}
	return out, nil
}

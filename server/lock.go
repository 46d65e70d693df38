package server

import (
	"context"
	"fmt"
	"path"
	"path/filepath"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	apiv1 "github.com/ispec-dev/ispec/api/ispec/v1"
	"github.com/ispec-dev/ispec/ensure"
	"github.com/ispec-dev/ispec/locker"
	"github.com/ispec-dev/ispec/spec"
)

// Lock implements ImageService: the lock `ispec lock` would write for the
// uploaded spec (or its drift), resolved with the server's registry
// client, BuildKit and pip netrc; never with the caller's secrets.
func (s *Server) Lock(ctx context.Context, req *apiv1.LockRequest) (*apiv1.LockResponse, error) {
	if s.locker == nil {
		return nil, status.Error(codes.Unimplemented, "this server does not lock specs")
	}
	if s.draining.Load() {
		return nil, status.Error(codes.Unavailable, "the server is shutting down and resolves no new locks; call another replica or retry")
	}
	in := req.GetInput()
	old, err := uploadedLock(in)
	if err != nil {
		return nil, err
	}
	opts := s.specOpts
	opts.IgnoreLock = true
	img, up, err := s.loadWith(ctx, in, false, opts)
	if err != nil {
		return nil, err
	}
	defer up.release()
	if err := s.allowReads(img); err != nil {
		return nil, err
	}
	if err := lockable(img, in); err != nil {
		return nil, err
	}
	select {
	case s.lockSlots <- struct{}{}:
		defer func() { <-s.lockSlots }()
	default:
		s.m.locks.WithLabelValues("refused").Inc()
		return nil, status.Errorf(codes.ResourceExhausted, "the server resolves %d locks at once already; retry", cap(s.lockSlots))
	}
	log := s.log.With("spec", img.File, "caller", Caller(ctx), "check", req.GetCheck())
	out := &apiv1.LockResponse{Platforms: img.Spec.Platform}
	if req.GetCheck() {
		out.Drift, err = s.locker.Check(ctx, img, old, req.GetUpgradePackages())
		if err != nil {
			return nil, s.lockError(ctx, log, err)
		}
		s.m.locks.WithLabelValues("checked").Inc()
		return out, nil
	}
	fresh, err := s.locker.Lock(ctx, img, old, req.GetUpgradePackages())
	if err != nil {
		return nil, s.lockError(ctx, log, err)
	}
	if out.Lock, err = spec.EncodeLock(fresh); err != nil {
		return nil, s.lockError(ctx, log, err)
	}
	if req.GetPylock() {
		if out.Pylock, err = locker.Pylock(fresh); err != nil {
			return nil, s.lockError(ctx, log, fmt.Errorf("pylock: %w", err))
		}
	}
	s.m.locks.WithLabelValues("locked").Inc()
	log.Info("spec locked", "platforms", img.Spec.Platform, "python", fresh.Python != nil)
	return out, nil
}

// lockError is the status of a failed lock, logged.
func (s *Server) lockError(ctx context.Context, log interface{ Warn(string, ...any) }, err error) error {
	s.m.locks.WithLabelValues("failed").Inc()
	if ctx.Err() != nil {
		return status.FromContextError(ctx.Err()).Err()
	}
	log.Warn("lock failed", "class", ensure.ClassOf(err).String(), "error", err)
	return errStatus(err)
}

// uploadedLock reads the lock file of the input's spec from the input's
// own files (it travels inline): nil when there is none.
func uploadedLock(in *apiv1.SpecInput) (*spec.Lock, error) {
	want := spec.LockPath(in.GetSpecPath())
	for _, f := range in.GetFiles() {
		if f.GetPath() != want {
			continue
		}
		if f.GetKind() != apiv1.FileKind_FILE_KIND_REGULAR {
			return nil, errStatus(&spec.FieldError{File: ensure.Short(want), Msg: "the lock file is not a regular file"})
		}
		if f.GetContent() == nil && f.GetSize() > 0 {
			return nil, errStatus(&spec.FieldError{File: ensure.Short(want), Msg: "the lock file must be sent with its content"})
		}
		if len(f.GetContent()) > spec.MaxFileSize {
			return nil, errStatus(&spec.FieldError{File: ensure.Short(want), Msg: fmt.Sprintf("the lock file is larger than the %d byte limit", spec.MaxFileSize)})
		}
		l, err := spec.ParseLock(ensure.Short(want), f.GetContent())
		if err != nil {
			return nil, errStatus(err)
		}
		return l, nil
	}
	return nil, nil
}

// lockable checks what the server will not lock: a spec whose pip needs
// the caller's secrets (the server uses its own netrc only), and a
// requirements file sent without its content (pip reads it).
func lockable(img *spec.Image, in *apiv1.SpecInput) error {
	if len(img.Spec.PipSecretMounts) > 0 {
		return errStatus(&spec.FieldError{File: ensure.Short(img.File), Field: "pip_secret_mounts",
			Msg: "a server locks with its own pip credentials only, never a caller's secrets: lock this spec where its secret files are (ispec lock without --server)"})
	}
	if img.Requirements == nil {
		return nil
	}
	omitted := map[string]bool{}
	for _, f := range in.GetFiles() {
		if f.GetKind() == apiv1.FileKind_FILE_KIND_REGULAR && f.GetContent() == nil && f.GetSize() > 0 {
			omitted[f.GetPath()] = true
		}
	}
	rel, err := filepath.Rel(img.Dir, img.Requirements.Root)
	if err != nil {
		return errStatus(err)
	}
	dir := path.Join(path.Dir(img.File), filepath.ToSlash(rel))
	for _, e := range img.Requirements.Entries {
		if p := path.Join(dir, e.Path); e.Kind == spec.KindFile && omitted[p] {
			return errStatus(&spec.FieldError{File: ensure.Short(p), Msg: "a requirements file must be sent with its content to be locked (pip reads it)"})
		}
	}
	return nil
}

package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/gofrs/flock"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	apiv1 "github.com/ispec-dev/ispec/api/ispec/v1"
	"github.com/ispec-dev/ispec/blobstore"
	"github.com/ispec-dev/ispec/ensure"
	"github.com/ispec-dev/ispec/wire"
)

// MaxChunk is the most bytes one WriteBlobRequest carries.
const MaxChunk = wire.MaxChunk

// workPrefix names the folder a server keeps under its upload dir: its
// blob store and the uploads it materializes. A server holds a lock on it
// while it runs; one nobody holds was left by a server that died.
const workPrefix = "ispec-serve-"

// workDir is a server's own folder under its upload dir.
type workDir struct {
	path    string // absolute, symlinks resolved
	lock    *flock.Flock
	uploads string
	blobs   *blobstore.Store
}

// openWorkDir resolves dir (the system's temporary folder when empty) to
// an absolute real path, removes the folders of servers that died there,
// and makes this server's own folder (0700) with its blob store.
func openWorkDir(dir string, opts ...blobstore.Option) (*workDir, error) {
	if dir == "" {
		dir = os.TempDir()
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("upload dir %s: %w", dir, err)
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, fmt.Errorf("upload dir %s: %w", dir, err)
	}
	sweep(real)
	p, err := os.MkdirTemp(real, workPrefix)
	if err != nil {
		return nil, fmt.Errorf("upload dir %s: %w", dir, err)
	}
	w := &workDir{path: p, lock: flock.New(filepath.Join(p, "lock")), uploads: filepath.Join(p, "uploads")}
	if ok, err := w.lock.TryLock(); err != nil || !ok {
		os.RemoveAll(p)
		return nil, fmt.Errorf("upload dir %s: locking its folder: %v", dir, err)
	}
	if err := os.Mkdir(w.uploads, 0o700); err != nil {
		w.close()
		return nil, fmt.Errorf("upload dir %s: %w", dir, err)
	}
	if w.blobs, err = blobstore.Open(filepath.Join(p, "blobs"), opts...); err != nil {
		w.close()
		return nil, fmt.Errorf("upload dir %s: %w", dir, err)
	}
	return w, nil
}

// sweep removes the folders that servers which died left in dir (their
// lock is free), with whatever uploads, secret files included, they held.
func sweep(dir string) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, de := range des {
		if !de.IsDir() || !strings.HasPrefix(de.Name(), workPrefix) {
			continue
		}
		p := filepath.Join(dir, de.Name())
		l := flock.New(filepath.Join(p, "lock"))
		if ok, err := l.TryLock(); err == nil && ok {
			os.RemoveAll(p)
			l.Unlock()
		}
	}
}

func (w *workDir) close() {
	os.RemoveAll(w.path)
	w.lock.Unlock()
}

// storeBlobs gives an upload the blobs of the server's store.
type storeBlobs struct{ s *blobstore.Store }

// Copy implements ensure.Blobs. Its errors never name the store's folder.
func (b storeBlobs) Copy(w io.Writer, digest string, size int64) error {
	d, err := blobstore.ParseDigest(digest, size)
	if err != nil {
		return err
	}
	if err := b.s.Copy(w, d); err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("blob %s: %w", d, err)
	}
	return nil
}

// FindMissingBlobs implements ImageService: which blobs the server lacks.
func (s *Server) FindMissingBlobs(_ context.Context, req *apiv1.FindMissingBlobsRequest) (*apiv1.FindMissingBlobsResponse, error) {
	if max := s.limits.MaxFiles; max > 0 && len(req.GetBlobs()) > max {
		return nil, status.Errorf(codes.InvalidArgument, "blobs: %d asked; at most %d per call", len(req.GetBlobs()), max)
	}
	ds := make([]blobstore.Digest, len(req.GetBlobs()))
	for i, b := range req.GetBlobs() {
		d, err := blobstore.ParseDigest(b.GetDigest(), b.GetSize())
		if err != nil {
			return nil, status.Errorf(codes.InvalidArgument, "blobs[%d]: %v", i, err)
		}
		ds[i] = d
	}
	out := &apiv1.FindMissingBlobsResponse{}
	for _, d := range s.work.blobs.Missing(ds) {
		out.Missing = append(out.Missing, &apiv1.Blob{Digest: d.String(), Size: d.Size})
	}
	return out, nil
}

// WriteBlob implements ImageService: one blob, streamed in chunks, hashed
// as it arrives and stored only when it matches its digest. At most one
// chunk per stream is held in memory.
func (s *Server) WriteBlob(stream apiv1.ImageService_WriteBlobServer) error {
	ctx := stream.Context()
	msg, err := stream.Recv()
	if err == io.EOF {
		return status.Error(codes.InvalidArgument, "blob: the stream ended before its first message")
	}
	if err != nil {
		return err
	}
	d, err := blobstore.ParseDigest(msg.GetBlob().GetDigest(), msg.GetBlob().GetSize())
	if err != nil {
		return status.Errorf(codes.InvalidArgument, "blob: %v", err)
	}
	done := &apiv1.WriteBlobResponse{CommittedSize: d.Size}
	if s.work.blobs.Has(d) {
		return stream.SendAndClose(done)
	}
	w, err := s.work.blobs.Writer(ctx, d)
	switch {
	case errors.Is(err, blobstore.ErrTooLarge):
		return status.Errorf(codes.ResourceExhausted, "%v: raise the server's --upload-cache-size", err)
	case ctx.Err() != nil:
		return status.FromContextError(ctx.Err()).Err()
	case err != nil:
		s.log.Error("writing a blob", "error", err)
		return status.Errorf(codes.Internal, "blob %s: the server could not store it", d)
	}
	defer w.Close()
	for {
		if len(msg.GetData()) > MaxChunk {
			return status.Errorf(codes.InvalidArgument, "blob %s: a chunk of %d bytes; at most %d per message", d, len(msg.GetData()), MaxChunk)
		}
		if _, err := w.Write(msg.GetData()); err != nil {
			return blobError(d, err)
		}
		s.m.upload.Add(float64(len(msg.GetData())))
		if msg.GetFinishWrite() {
			break
		}
		msg, err = stream.Recv()
		if err == io.EOF {
			return status.Errorf(codes.InvalidArgument, "blob %s: the stream ended after %d bytes without finish_write", d, w.Written())
		}
		if err != nil {
			return err
		}
	}
	if err := w.Commit(); err != nil {
		return blobError(d, err)
	}
	return stream.SendAndClose(done)
}

func blobError(d blobstore.Digest, err error) error {
	if errors.Is(err, blobstore.ErrMismatch) {
		return status.Errorf(codes.InvalidArgument, "%v; nothing was stored", err)
	}
	return status.Errorf(codes.Internal, "blob %s: the server could not store it", d)
}

// missingPaths returns the status of a build whose blobs the server lacks.
func missingPaths(paths []string) error {
	var b strings.Builder
	for i, p := range paths {
		if b.Len() > 600 {
			fmt.Fprintf(&b, " and %d more", len(paths)-i)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(ensure.Short(p))
	}
	return status.Errorf(codes.FailedPrecondition, "the server does not hold the content of %d files sent without it: %s (send them with WriteBlob, then build again)", len(paths), b.String())
}

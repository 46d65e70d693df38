// Package client calls an `ispec serve` (ispec.v1.ImageService): it
// uploads what a loaded spec references, sending file bytes only when the
// server must build, and turns the server's events and errors back into
// the pipeline's, so the CLI renders a remote build as a local one.
package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	apiv1 "github.com/ispec-dev/ispec/api/ispec/v1"
	"github.com/ispec-dev/ispec/cache/lookup"
	"github.com/ispec-dev/ispec/ensure/call"
	"github.com/ispec-dev/ispec/internal/netaddr"
	"github.com/ispec-dev/ispec/spec"
	"github.com/ispec-dev/ispec/wire"
)

// Client calls one wire. It is safe for concurrent use.
type Client struct {
	addr string
	conn *grpc.ClientConn
	api  apiv1.ImageServiceClient
}

// Option configures a Client.
type Option func(*options) error

type options struct {
	token string
	tls   *tls.Config
}

// WithToken authenticates with a bearer token.
//
// The default sends none.
func WithToken(token string) Option {
	return func(o *options) error {
		if strings.ContainsAny(token, " \t\r\n") {
			return errors.New("token has spaces or line breaks")
		}
		o.token = token
		return nil
	}
}

// WithTLS sets the TLS configuration (client certificates for mTLS, a CA).
//
// The default is plain text for loopback addresses and TLS with the
// system's roots otherwise, as registries are reached.
func WithTLS(c *tls.Config) Option {
	return func(o *options) error { o.tls = c; return nil }
}

// Dial returns a client of the server at addr: HOST:PORT, or
// unix:///PATH (unix:PATH) for a server on a unix socket of this host. It
// does not wait for the server: an unreachable one fails the first call
// with an unavailable error.
func Dial(addr string, opts ...Option) (*Client, error) {
	var o options
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("server %s: %w", addr, err)
		}
	}
	local := false
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		if strings.TrimPrefix(path, "//") == "" {
			return nil, fmt.Errorf("server %q: expected unix:///PATH: %w", addr, spec.ErrInvalid)
		}
		// A socket of this host: its file's mode says who may connect.
		local = true
	} else {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, fmt.Errorf("server %q: expected HOST:PORT or unix:///PATH: %w", addr, spec.ErrInvalid)
		}
		local = netaddr.LoopbackHost(host)
	}
	creds := insecure.NewCredentials()
	switch {
	case o.tls != nil:
		creds = credentials.NewTLS(o.tls)
	case !local:
		creds = credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})
	}
	dopts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(wire.MaxMessage), grpc.MaxCallSendMsgSize(wire.MaxMessage)),
	}
	if o.token != "" {
		dopts = append(dopts, grpc.WithPerRPCCredentials(bearer{token: o.token, secure: o.tls != nil || !local}))
	}
	conn, err := grpc.NewClient(addr, dopts...)
	if err != nil {
		return nil, fmt.Errorf("server %s: %w", addr, err)
	}
	return &Client{addr: addr, conn: conn, api: apiv1.NewImageServiceClient(conn)}, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// bearer sends a token with every call.
type bearer struct {
	token  string
	secure bool
}

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + b.token}, nil
}

func (b bearer) RequireTransportSecurity() bool { return b.secure }

// Error is a failure the server reported, classified as the pipeline
// classifies its own.
type Error struct {
	// Class is the failure's class.
	Class call.Class
	// Code is the call's gRPC status code.
	Code codes.Code
	// Msg is the server's message.
	Msg string
	// Specs are the spec's field errors of an invalid spec.
	Specs []*apiv1.SpecError
}

// Error implements error.
func (e *Error) Error() string {
	if len(e.Specs) == 0 {
		return e.Msg
	}
	lines := make([]string, len(e.Specs))
	for i, s := range e.Specs {
		fe := spec.FieldError{File: s.GetFile(), Line: int(s.GetLine()), Field: s.GetField(), Msg: s.GetMessage()}
		lines[i] = fe.Error()
	}
	return strings.Join(lines, "\n")
}

// ErrorClass implements ensure's classification.
func (e *Error) ErrorClass() call.Class { return e.Class }

// callError turns a failed call into an *Error.
func (c *Client) callError(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	e := &Error{Msg: st.Message(), Code: st.Code()}
	switch st.Code() {
	case codes.InvalidArgument, codes.NotFound:
		e.Class = call.ClassInvalid
	case codes.PermissionDenied, codes.Unauthenticated:
		e.Class = call.ClassDenied
	case codes.ResourceExhausted:
		e.Class = call.ClassBusy
	case codes.Canceled:
		e.Class = call.ClassCanceled
	case codes.DeadlineExceeded:
		e.Class = call.ClassTimeout
	case codes.Aborted:
		e.Class = call.ClassFailed
	case codes.Unavailable:
		e.Class = call.ClassUnavailable
		e.Msg = fmt.Sprintf("server %s is not reachable: %s", c.addr, st.Message())
	default:
		e.Class = call.ClassInternal
	}
	if st.Code() == codes.Unauthenticated || st.Code() == codes.PermissionDenied {
		e.Msg = fmt.Sprintf("server %s refused the call: %s", c.addr, st.Message())
	}
	for _, d := range st.Details() {
		if se, ok := d.(*apiv1.SpecErrors); ok {
			e.Specs = se.GetErrors()
		}
	}
	return e
}

// Build makes img exist through the server: it first sends the spec with
// the digests of copied files and no bytes; only when the server needs a
// build does it ask which of their contents the server lacks, send those
// (and only those) as blobs, and build. req.Sink gets the server's events
// as pipeline events.
func (c *Client) Build(ctx context.Context, img *spec.Image, req call.Request, detail apiv1.ProgressDetail) (*call.Result, error) {
	u, err := collect(img)
	if err != nil {
		return nil, fmt.Errorf("%s: reading its files: %w", img.File, err)
	}
	opts := &apiv1.BuildOptions{Force: req.Force, NoCache: req.NoCache, Progress: detail}
	up, err := u.build(false)
	if err != nil {
		return nil, fmt.Errorf("%s: reading its files: %w", img.File, err)
	}
	res, needFiles, err := c.build(ctx, &apiv1.BuildRequest{Input: wire.Input(up), FilesOmitted: true, Options: opts}, req.Sink)
	if err != nil || !needFiles {
		return res, err
	}
	if up, err = u.build(true); err != nil {
		return nil, fmt.Errorf("%s: reading its files: %w", img.File, err)
	}
	// The server may evict blobs between their upload and the build (its
	// cache is bounded): send what it lacks again, a few times.
	const attempts = 3
	for i := 1; ; i++ {
		if err := c.sendBlobs(ctx, u); err != nil {
			return nil, fmt.Errorf("%s: %w", img.File, err)
		}
		res, _, err := c.build(ctx, &apiv1.BuildRequest{Input: wire.Input(up), Options: opts}, req.Sink)
		var ce *Error
		if i < attempts && errors.As(err, &ce) && ce.Code == codes.FailedPrecondition {
			continue
		}
		return res, err
	}
}

// BlobWorkers is how many blobs a client sends at once.
const BlobWorkers = 4

// sendBlobs sends the contents of u's copied files the server lacks, a
// chunk per message.
func (c *Client) sendBlobs(ctx context.Context, u *upload) error {
	all := u.blobs()
	var missing []blob
	for start := 0; start < len(all); start += maxBlobsPerCall {
		batch := all[start:min(start+maxBlobsPerCall, len(all))]
		req := &apiv1.FindMissingBlobsRequest{}
		byKey := map[string]blob{}
		for _, b := range batch {
			req.Blobs = append(req.Blobs, &apiv1.Blob{Digest: b.digest, Size: b.size})
			byKey[fmt.Sprintf("%s/%d", b.digest, b.size)] = b
		}
		resp, err := c.api.FindMissingBlobs(ctx, req)
		if err != nil {
			return c.callError(err)
		}
		for _, m := range resp.GetMissing() {
			if b, ok := byKey[fmt.Sprintf("%s/%d", m.GetDigest(), m.GetSize())]; ok {
				missing = append(missing, b)
			}
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(BlobWorkers)
	for _, b := range missing {
		g.Go(func() error { return c.sendBlob(gctx, filepath.Join(u.root, filepath.FromSlash(b.path)), b) })
	}
	return g.Wait()
}

// maxBlobsPerCall is the server's default MaxFiles.
const maxBlobsPerCall = 10000

// sendBlob streams one file as the blob b.
func (c *Client) sendBlob(ctx context.Context, abs string, b blob) error {
	f, err := os.Open(abs)
	if err != nil {
		return fmt.Errorf("sending %s: %w", b.path, err)
	}
	defer f.Close()
	stream, err := c.api.WriteBlob(ctx)
	if err != nil {
		return c.callError(err)
	}
	buf := make([]byte, wire.MaxChunk)
	var sent int64
	for first := true; ; first = false {
		n, rerr := io.ReadFull(f, buf)
		if rerr != nil && rerr != io.EOF && rerr != io.ErrUnexpectedEOF {
			return fmt.Errorf("sending %s: %w", b.path, rerr)
		}
		sent += int64(n)
		msg := &apiv1.WriteBlobRequest{Data: buf[:n], FinishWrite: rerr != nil || sent == b.size}
		if first {
			msg.Blob = &apiv1.Blob{Digest: b.digest, Size: b.size}
		}
		if err := stream.Send(msg); err != nil {
			// io.EOF: the server answered already (it holds the blob,
			// or refused it); CloseAndRecv says which.
			break
		}
		if msg.FinishWrite {
			break
		}
	}
	if _, err := stream.CloseAndRecv(); err != nil {
		ce := c.callError(err)
		var e *Error
		if errors.As(ce, &e) && e.Code == codes.InvalidArgument {
			return fmt.Errorf("sending %s (did it change since it was read?): %w", b.path, ce)
		}
		return ce
	}
	return nil
}

func (c *Client) build(ctx context.Context, breq *apiv1.BuildRequest, sink call.Sink) (*call.Result, bool, error) {
	stream, err := c.api.Build(ctx, breq)
	if err != nil {
		return nil, false, c.callError(err)
	}
	var res *call.Result
	var failed *apiv1.Failed
	for {
		ev, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			if failed != nil {
				return nil, false, failedError(failed)
			}
			if ctx.Err() != nil {
				return nil, false, ctx.Err()
			}
			return nil, false, c.callError(err)
		}
		if ev.GetFilesNeeded() != nil {
			return nil, true, nil
		}
		pev, r := eventFromAPI(ev)
		if r != nil {
			res = r
		}
		if f := ev.GetFailed(); f != nil {
			failed = f
		}
		if sink != nil && pev.Kind != call.KindUnspecified {
			sink(pev)
		}
	}
	if failed != nil {
		return nil, false, failedError(failed)
	}
	if res == nil {
		return nil, false, &Error{Class: call.ClassInternal, Msg: "the server ended the build without a result"}
	}
	return res, false, nil
}

func failedError(f *apiv1.Failed) error {
	c := wire.ClassFromAPI(f.GetErrorClass())
	return &Error{Class: c, Code: wire.ClassCode(c), Msg: f.GetMessage(), Specs: f.GetSpecErrors()}
}

// eventFromAPI converts a server event; the result when it is Done.
func eventFromAPI(ev *apiv1.BuildEvent) (call.Event, *call.Result) {
	out := call.Event{Ref: ev.GetRef(), BuildID: ev.GetBuildId(), Time: ev.GetTime().AsTime()}
	switch {
	case ev.GetAccepted() != nil:
		out.Kind = call.KindAccepted
	case ev.GetJoined() != nil:
		out.Kind = call.KindJoined
	case ev.GetWaiting() != nil:
		out.Kind, out.Holder = call.KindWaiting, ev.GetWaiting().GetReason()
	case ev.GetFound() != nil:
		out.Kind = call.KindFound
	case ev.GetBuilding() != nil:
		out.Kind, out.Fence = call.KindBuilding, ev.GetBuilding().GetFence()
	case ev.GetProgress() != nil:
		out.Kind, out.Status = call.KindProgress, wire.ProgressFromAPI(ev.GetProgress())
	case ev.GetPushed() != nil:
		out.Kind = call.KindPushed
	case ev.GetFailed() != nil:
		out.Kind, out.Err = call.KindFailed, failedError(ev.GetFailed())
	case ev.GetDone() != nil:
		d := ev.GetDone()
		out.Kind = call.KindDone
		t, err := name.NewTag(d.GetRef())
		if err != nil {
			return out, nil
		}
		h, _ := v1.NewHash(d.GetDigest())
		res := &call.Result{Ref: t, Digest: h, Outcome: wire.OutcomeFromAPI(d.GetOutcome()), BuildID: ev.GetBuildId(), Duration: d.GetDuration().AsDuration(),
			Python: wire.PythonFromAPI(d.GetPythonResolved())}
		out.Digest, out.Result = h, res
		return out, res
	}
	return out, nil
}

// Lookup asks the server about each image: one result per image, in
// order. Copied files' bytes are never sent.
func (c *Client) Lookup(ctx context.Context, imgs []*spec.Image) ([]lookup.Result, error) {
	req := &apiv1.LookupRequest{}
	refs := make([]name.Tag, len(imgs))
	for i, img := range imgs {
		u, err := collect(img)
		if err != nil {
			return nil, fmt.Errorf("%s: reading its files: %w", img.File, err)
		}
		up, err := u.build(false)
		if err != nil {
			return nil, fmt.Errorf("%s: reading its files: %w", img.File, err)
		}
		req.Items = append(req.Items, &apiv1.LookupItem{Item: &apiv1.LookupItem_Spec{Spec: wire.Input(up)}})
		if img.Identity.Registry != "" {
			refs[i], _ = name.NewTag(img.Identity.Ref, name.StrictValidation)
		}
	}
	resp, err := c.api.Lookup(ctx, req)
	if err != nil {
		return nil, c.callError(err)
	}
	out := make([]lookup.Result, len(imgs))
	for i, r := range resp.GetResults() {
		if i >= len(out) {
			break
		}
		t, err := name.NewTag(r.GetRef())
		if err != nil {
			t = refs[i]
		}
		cr := lookup.Result{Ref: t, Message: r.GetError()}
		switch r.GetState() {
		case apiv1.LookupState_LOOKUP_STATE_EXISTS:
			cr.State = lookup.Exists
			cr.Digest, _ = v1.NewHash(r.GetDigest())
			cr.FromIndex = r.GetSource() == apiv1.LookupSource_LOOKUP_SOURCE_INDEX
		case apiv1.LookupState_LOOKUP_STATE_ABSENT:
			cr.State = lookup.Absent
		default:
			cr.Err = &lookup.UnknownError{Ref: t.Name(), Reason: lookup.ReasonOther, Message: r.GetError()}
		}
		out[i] = cr
	}
	return out, nil
}

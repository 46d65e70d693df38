package server_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	apiv1 "github.com/ispec-dev/ispec/api/ispec/v1"
	"github.com/ispec-dev/ispec/cache"
	"github.com/ispec-dev/ispec/ensure"
	"github.com/ispec-dev/ispec/server"
)

// panickingLookup panics on every lookup: a bug anywhere below a handler.
type panickingLookup struct{}

func (panickingLookup) Lookup(context.Context, name.Tag) cache.Result {
	panic("lookup bug")
}

// lockedBuffer is a log destination safe for concurrent handlers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestPanicInAHandlerFailsThatCallOnly(t *testing.T) {
	p, err := ensure.New(ensure.WithLookup(panickingLookup{}))
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	srv, err := server.New(p, panickingLookup{}, server.WithUploadDir(t.TempDir()), server.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	api := rawAPI(t, serveLoopback(t, srv))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	in := &apiv1.SpecInput{SpecPath: "spec.yaml", Spec: []byte("name: app\nregistry: r.example\n")}

	// Without file bytes the server looks the tag up in the handler: the
	// lookup panics.
	stream, err := api.Build(ctx, &apiv1.BuildRequest{Input: in, FilesOmitted: true})
	if err == nil {
		_, err = stream.Recv()
	}
	if status.Code(err) != codes.Internal || strings.Contains(err.Error(), "lookup bug") {
		t.Errorf("the panicking call: %v, want INTERNAL without the panic's value", err)
	}
	if l := logs.String(); !strings.Contains(l, "lookup bug") || !strings.Contains(l, "panickingLookup") || !strings.Contains(l, "caller=anonymous") {
		t.Errorf("the log lacks the panic, its stack or the caller:\n%s", l)
	}
	// Lookup calls look items up on goroutines of their own: a panic
	// there answers unknown.
	lr, err := api.Lookup(ctx, &apiv1.LookupRequest{Items: []*apiv1.LookupItem{
		{Item: &apiv1.LookupItem_Ref{Ref: "r.example/a:1"}}, {Item: &apiv1.LookupItem_Ref{Ref: "r.example/b:1"}}}})
	if err != nil || len(lr.GetResults()) != 2 || lr.GetResults()[0].GetState() != apiv1.LookupState_LOOKUP_STATE_UNKNOWN ||
		strings.Contains(lr.GetResults()[0].GetError(), "lookup bug") {
		t.Errorf("lookups that panic: %v, %v; want two unknown results without the panic's value", lr, err)
	}
	// The server serves on.
	resp, err := api.Resolve(ctx, &apiv1.ResolveRequest{Input: in})
	if err != nil || !strings.HasPrefix(resp.GetImage().GetRef(), "r.example/app:") {
		t.Errorf("a call after the panic: %v, %v", resp, err)
	}
}

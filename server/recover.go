package server

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/ispec-dev/ispec/cache"
	"github.com/ispec-dev/ispec/ensure"
)

// recovered is what a call that panicked gets: INTERNAL, the panic
// logged with its stack and caller, the server serving on.
func (s *Server) recovered(ctx context.Context, p any) error {
	who := "unauthenticated"
	if c, ok := ctx.Value(callerKey{}).(caller); ok {
		who = c.name
	}
	s.log.Error("a call panicked; it fails, the server goes on", "caller", who, "panic", p, "stack", string(debug.Stack()))
	return status.Error(codes.Internal, "internal error: the call failed on a bug of the server (its log has the details)")
}

// recoveryInterceptors turn a panic into the call's INTERNAL failure.
func (s *Server) recoveryInterceptors() (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
	o := recovery.WithRecoveryHandlerContext(s.recovered)
	return recovery.UnaryServerInterceptor(o), recovery.StreamServerInterceptor(o)
}

// recoveringLookup answers a lookup that panicked "unknown": Lookup calls
// look items up on goroutines of their own, where the call's recovery
// does not reach.
type recoveringLookup struct {
	next ensure.Lookup
	log  *slog.Logger
}

func (l recoveringLookup) Lookup(ctx context.Context, ref name.Tag) (res cache.Result) {
	defer func() {
		if v := recover(); v != nil {
			l.log.Error("a lookup panicked; it answers unknown, the server goes on", "ref", ref.Name(), "caller", Caller(ctx),
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			res = cache.Result{Ref: ref, Err: &cache.UnknownError{Ref: ref.Name(), Reason: cache.ReasonOther,
				Message: "internal error (the server's log has the details)"}}
		}
	}()
	return l.next.Lookup(ctx, ref)
}

// Prepare passes a batch's preparation on (cache.Preparer).
func (l recoveringLookup) Prepare(ctx context.Context, refs []name.Tag) {
	if p, ok := l.next.(cache.Preparer); ok {
		p.Prepare(ctx, refs)
	}
}

package server

import (
	"time"

	grpcprom "github.com/grpc-ecosystem/go-grpc-middleware/providers/prometheus"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	apiv1 "github.com/ispec-dev/ispec/api/ispec/v1"
	"github.com/ispec-dev/ispec/wire"
)

// MaxMessage is the largest gRPC message the server takes: a spec input
// with its inline content at the default limit, plus room for the
// message's own fields. File contents beyond it travel as blobs
// (WriteBlob), a chunk per message.
const MaxMessage = wire.MaxMessage

// GRPC returns a gRPC server with s registered as ImageService behind
// auth, plus health (SERVING) and reflection, and gRPC's metrics and
// ispec_calls_total in reg when it is set. creds nil is plain text. A
// panic in a call fails that call with INTERNAL and is logged with its
// stack; the server goes on. Each connection may open at most
// WithMaxConcurrentStreams calls, clients may ping at most every 10s, and
// a connection that does not answer the server's pings is closed.
func (s *Server) GRPC(a *Auth, reg prometheus.Registerer, creds credentials.TransportCredentials) (*grpc.Server, *health.Server, error) {
	authU, authS := a.Interceptors()
	calls, err := newCallCounter(reg)
	if err != nil {
		return nil, nil, err
	}
	callsU, callsS := calls.interceptors()
	recU, recS := s.recoveryInterceptors()
	// Recovery twice: around authentication, and inside it, where the
	// log can name the caller.
	unary := []grpc.UnaryServerInterceptor{recU, authU, recU, callsU}
	stream := []grpc.StreamServerInterceptor{recS, authS, recS, callsS}
	var gm *grpcprom.ServerMetrics
	if reg != nil {
		gm = grpcprom.NewServerMetrics(grpcprom.WithServerHandlingTimeHistogram())
		if err := reg.Register(gm); err != nil {
			return nil, nil, err
		}
		unary = append([]grpc.UnaryServerInterceptor{gm.UnaryServerInterceptor()}, unary...)
		stream = append([]grpc.StreamServerInterceptor{gm.StreamServerInterceptor()}, stream...)
	}
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(MaxMessage),
		grpc.MaxConcurrentStreams(s.maxStreams),
		// Clients may ping every 10s at most, with or without a call; a
		// connection that answers no ping within 20s is closed, so a
		// vanished caller's streams end.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: time.Minute, Timeout: 20 * time.Second}),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
	}
	if creds != nil {
		opts = append(opts, grpc.Creds(creds))
	}
	gs := grpc.NewServer(opts...)
	apiv1.RegisterImageServiceServer(gs, s)
	hs := health.NewServer()
	grpc_health_v1.RegisterHealthServer(gs, hs)
	reflection.Register(gs)
	if gm != nil {
		gm.InitializeMetrics(gs)
	}
	hs.SetServingStatus("", grpc_health_v1.HealthCheckResponse_SERVING)
	hs.SetServingStatus(apiv1.ImageService_ServiceDesc.ServiceName, grpc_health_v1.HealthCheckResponse_SERVING)
	return gs, hs, nil
}

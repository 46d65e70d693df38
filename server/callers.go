package server

import (
	"context"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health/grpc_health_v1"
)

// maxCallerLabels bounds the caller label's values: token names are few,
// but any certificate the client CA signs names a caller.
const maxCallerLabels = 64

// callerLabels hands out metric label values for caller names: the name
// itself for the first maxCallerLabels names, "other" after.
type callerLabels struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (l *callerLabels) label(name string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.seen == nil {
		l.seen = map[string]bool{}
	}
	if !l.seen[name] {
		if len(l.seen) >= maxCallerLabels {
			return "other"
		}
		l.seen[name] = true
	}
	return name
}

// callCounter counts calls by caller and method (ispec_calls_total).
type callCounter struct {
	calls  *prometheus.CounterVec
	labels callerLabels
}

func newCallCounter(reg prometheus.Registerer) (*callCounter, error) {
	c := &callCounter{calls: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ispec_calls_total", Help: "Authenticated calls by caller (its token's or certificate's name; \"other\" past 64 names) and method.",
	}, []string{"caller", "method"})}
	if reg != nil {
		if err := reg.Register(c.calls); err != nil {
			return nil, err
		}
	}
	return c, nil
}

func (c *callCounter) count(ctx context.Context, method string) {
	if strings.HasPrefix(method, "/"+grpc_health_v1.Health_ServiceDesc.ServiceName+"/") {
		// Probes: no caller to count.
		return
	}
	c.calls.WithLabelValues(c.labels.label(Caller(ctx)), method).Inc()
}

func (c *callCounter) interceptors() (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			c.count(ctx, info.FullMethod)
			return h(ctx, req)
		}, func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
			c.count(ss.Context(), info.FullMethod)
			return h(srv, ss)
		}
}

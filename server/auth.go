package server

import (
	"bufio"
	"context"
	"crypto/subtle"
	"fmt"
	"io"
	"strings"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Auth checks who calls: a bearer token from a list, or a client
// certificate that TLS verified against the configured client CA. With
// neither configured every caller is let in (the server then listens on
// loopback only; cmd enforces that). Health checks need no credentials.
type Auth struct {
	tokens [][]byte
	mtls   bool
}

// NewAuth returns an Auth with the given tokens (compared in constant
// time) and whether verified client certificates identify callers.
func NewAuth(tokens []string, mtls bool) *Auth {
	a := &Auth{mtls: mtls}
	for _, t := range tokens {
		a.tokens = append(a.tokens, []byte(t))
	}
	return a
}

// Enabled reports whether any check is configured.
func (a *Auth) Enabled() bool { return len(a.tokens) > 0 || a.mtls }

// ReadTokens reads a token file: one token per line; blank lines and lines
// starting with # are skipped. Tokens never appear in errors.
func ReadTokens(r io.Reader) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if strings.ContainsAny(t, " \t") {
			return nil, fmt.Errorf("line %d: a token has no spaces", n)
		}
		out = append(out, t)
	}
	return out, sc.Err()
}

type callerKey struct{}

// Caller returns the identity the caller authenticated with ("token 2",
// "cert CN", or "anonymous"); never a credential.
func Caller(ctx context.Context) string {
	if c, ok := ctx.Value(callerKey{}).(string); ok {
		return c
	}
	return "anonymous"
}

func (a *Auth) authenticate(ctx context.Context) (context.Context, error) {
	if a.mtls {
		if p, ok := peer.FromContext(ctx); ok {
			if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 {
				return context.WithValue(ctx, callerKey{}, "cert "+ti.State.VerifiedChains[0][0].Subject.CommonName), nil
			}
		}
		if len(a.tokens) == 0 {
			return nil, status.Error(codes.Unauthenticated, "a client certificate signed by the server's client CA is required")
		}
	}
	if len(a.tokens) == 0 {
		return ctx, nil
	}
	tok, err := auth.AuthFromMD(ctx, "bearer")
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, "a bearer token is required: authorization: Bearer TOKEN")
	}
	match := -1
	for i, t := range a.tokens {
		// Every token is compared, so the time taken says nothing about
		// which one matched or how much of it.
		if subtle.ConstantTimeCompare([]byte(tok), t) == 1 && match < 0 {
			match = i
		}
	}
	if match < 0 {
		return nil, status.Error(codes.Unauthenticated, "the bearer token is not valid")
	}
	return context.WithValue(ctx, callerKey{}, fmt.Sprintf("token %d", match+1)), nil
}

// needsAuth is false for health checks, which load balancers and kubelets
// make without credentials.
func needsAuth(_ context.Context, c interceptors.CallMeta) bool {
	return c.Service != grpc_health_v1.Health_ServiceDesc.ServiceName
}

// Interceptors returns the unary and stream interceptors that
// authenticate callers.
func (a *Auth) Interceptors() (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
	m := selector.MatchFunc(needsAuth)
	return selector.UnaryServerInterceptor(auth.UnaryServerInterceptor(a.authenticate), m),
		selector.StreamServerInterceptor(auth.StreamServerInterceptor(a.authenticate), m)
}

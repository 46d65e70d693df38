package server

import (
	"context"
	"errors"
	"log/slog"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/auth"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/selector"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/ispec-dev/ispec/ensure"
)

// Anonymous is the caller's name when the server checks no credentials
// (a loopback address or a unix socket): every caller is then the same
// one, and sees every build.
const Anonymous = "anonymous"

// Auth checks who calls: a bearer token of a token file, or a client
// certificate that TLS verified against the configured client CA (the
// caller is named by its subject's common name). With neither configured
// every caller is let in as Anonymous (the server then listens on
// loopback or a unix socket only; cmd enforces that). Health checks need
// no credentials.
type Auth struct {
	tokens *TokenFile
	mtls   bool
	log    *slog.Logger
}

// AuthOption configures an Auth.
type AuthOption func(*Auth) error

// WithTokenFile lets callers in with a bearer token of f.
//
// The default accepts no token.
func WithTokenFile(f *TokenFile) AuthOption {
	return func(a *Auth) error {
		if f == nil {
			return errors.New("token file is nil")
		}
		a.tokens = f
		return nil
	}
}

// WithClientCertificates lets callers in with a client certificate that
// the TLS configuration verified; they are named by its subject's common
// name and are never admins.
//
// The default checks no certificate.
func WithClientCertificates() AuthOption {
	return func(a *Auth) error { a.mtls = true; return nil }
}

// WithAuthLogger sets where a token file that cannot be read again is
// reported.
//
// The default discards logs.
func WithAuthLogger(l *slog.Logger) AuthOption {
	return func(a *Auth) error {
		if l == nil {
			return errors.New("logger is nil")
		}
		a.log = l
		return nil
	}
}

// NewAuth returns an Auth; without options it lets every caller in as
// Anonymous.
func NewAuth(opts ...AuthOption) (*Auth, error) {
	a := &Auth{log: slog.New(slog.DiscardHandler)}
	for _, opt := range opts {
		if err := opt(a); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Enabled reports whether any check is configured.
func (a *Auth) Enabled() bool { return a.tokens != nil || a.mtls }

// UsesTokens reports whether callers may present bearer tokens, which a
// plain-text transport would expose.
func (a *Auth) UsesTokens() bool { return a.tokens != nil }

// caller is who a call comes from.
type caller struct {
	name  string
	admin bool
}

type callerKey struct{}

// Caller returns the name of the caller a call authenticated as: its
// token's name, its certificate's common name, or Anonymous. Never a
// credential.
func Caller(ctx context.Context) string { return callerOf(ctx).name }

func callerOf(ctx context.Context) caller {
	if c, ok := ctx.Value(callerKey{}).(caller); ok {
		return c
	}
	return caller{name: Anonymous}
}

// sees reports whether c may see b: an admin sees every build, any other
// caller those it started or joined.
func (c caller) sees(b ensure.BuildInfo) bool { return c.admin || b.Involves(c.name) }

func (a *Auth) authenticate(ctx context.Context) (context.Context, error) {
	if a.mtls {
		if p, ok := peer.FromContext(ctx); ok {
			if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.VerifiedChains) > 0 {
				return context.WithValue(ctx, callerKey{}, caller{name: ti.State.VerifiedChains[0][0].Subject.CommonName}), nil
			}
		}
		if a.tokens == nil {
			return nil, status.Error(codes.Unauthenticated, "a client certificate signed by the server's client CA is required")
		}
	}
	if a.tokens == nil {
		return context.WithValue(ctx, callerKey{}, caller{name: Anonymous}), nil
	}
	secret, err := auth.AuthFromMD(ctx, "bearer")
	if err != nil {
		return nil, status.Error(codes.Unauthenticated, "a bearer token is required: authorization: Bearer TOKEN")
	}
	tokens, changed, err := a.tokens.current()
	switch {
	case changed && err != nil:
		a.log.Error("the token file changed and cannot be used: every token is refused until it is fixed", "error", err)
	case changed:
		a.log.Info("token file read again", "tokens", len(tokens))
	}
	t, ok := matchToken(tokens, secret)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "the bearer token is not valid")
	}
	return context.WithValue(ctx, callerKey{}, caller{name: t.Name, admin: t.Admin}), nil
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

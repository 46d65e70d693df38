package cache

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// Option configures a [Remote].
type Option func(*options) error

type options struct {
	keychain       authn.Keychain
	insecure       map[string]bool
	retries        int
	backoffBase    time.Duration
	backoffMax     time.Duration
	attemptTimeout time.Duration
	transport      http.RoundTripper
	userAgent      string
}

const (
	defaultRetries        = 3
	defaultBackoffBase    = 500 * time.Millisecond
	defaultBackoffMax     = 10 * time.Second
	defaultAttemptTimeout = 20 * time.Second
)

func makeOptions(opts ...Option) (*options, error) {
	o := &options{
		keychain:       authn.DefaultKeychain,
		insecure:       map[string]bool{},
		retries:        defaultRetries,
		backoffBase:    defaultBackoffBase,
		backoffMax:     defaultBackoffMax,
		attemptTimeout: defaultAttemptTimeout,
	}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	if o.transport == nil {
		if t, ok := remote.DefaultTransport.(*http.Transport); ok {
			t = t.Clone()
			// Keep a connection per concurrent lookup (LookupAll runs
			// DefaultJobs at once) instead of net/http's 2 per host.
			t.MaxIdleConnsPerHost = 2 * DefaultJobs
			o.transport = t
		} else {
			o.transport = remote.DefaultTransport
		}
	}
	if o.backoffMax < o.backoffBase {
		return nil, fmt.Errorf("maximum backoff %s is shorter than base backoff %s", o.backoffMax, o.backoffBase)
	}
	return o, nil
}

// WithKeychain sets where credentials come from.
//
// The default is authn.DefaultKeychain, which reads the Docker config
// ($DOCKER_CONFIG/config.json or ~/.docker/config.json) and runs the
// credential helpers it names.
func WithKeychain(kc authn.Keychain) Option {
	return func(o *options) error {
		if kc == nil {
			return errors.New("keychain is nil")
		}
		o.keychain = kc
		return nil
	}
}

// WithInsecureRegistries lists registries ("host" or "host:port") that are
// reached over plain HTTP. Loopback registries (localhost, 127.0.0.0/8,
// [::1], any port) always are and need not be listed.
//
// The default is none.
func WithInsecureRegistries(hosts ...string) Option {
	return func(o *options) error {
		for _, h := range hosts {
			h = strings.ToLower(strings.TrimSpace(h))
			if h == "" || strings.Contains(h, "/") {
				return fmt.Errorf("invalid insecure registry %q: want host or host:port", h)
			}
			o.insecure[h] = true
		}
		return nil
	}
}

// WithRetries sets how many times a lookup is retried after a rate limit
// (429), a server error (5xx) or a timeout. Zero means a single attempt.
//
// The default is 3 (four attempts in all).
func WithRetries(n int) Option {
	return func(o *options) error {
		if n < 0 {
			return fmt.Errorf("retries must not be negative, got %d", n)
		}
		o.retries = n
		return nil
	}
}

// WithBackoff sets the wait before the first retry (doubled on each further
// retry, with jitter) and the longest wait, which also caps a registry's
// Retry-After.
//
// The default is 500ms, at most 10s.
func WithBackoff(base, max time.Duration) Option {
	return func(o *options) error {
		if base <= 0 || max <= 0 {
			return fmt.Errorf("backoff must be positive, got %s and %s", base, max)
		}
		o.backoffBase, o.backoffMax = base, max
		return nil
	}
}

// WithAttemptTimeout bounds each attempt (authentication handshake included);
// an attempt that runs out of time counts as a timeout and is retried.
//
// The default is 20s.
func WithAttemptTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("attempt timeout must be positive, got %s", d)
		}
		o.attemptTimeout = d
		return nil
	}
}

// WithTransport sets the HTTP round tripper under authentication.
//
// The default is a clone of go-containerregistry's remote.DefaultTransport,
// which honours HTTP(S)_PROXY.
func WithTransport(rt http.RoundTripper) Option {
	return func(o *options) error {
		if rt == nil {
			return errors.New("transport is nil")
		}
		o.transport = rt
		return nil
	}
}

// WithUserAgent prepends ua to the User-Agent header of every request.
//
// The default is go-containerregistry's own user agent.
func WithUserAgent(ua string) Option {
	return func(o *options) error {
		o.userAgent = ua
		return nil
	}
}

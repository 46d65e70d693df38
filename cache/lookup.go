package cache

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/ispec-dev/ispec/internal/netaddr"
)

// Checker answers whether one tag exists. [Remote] and [Cached] implement it.
type Checker interface {
	// Lookup answers for ref; the Result's Err is set when its State is Unknown.
	Lookup(ctx context.Context, ref name.Tag) Result
}

// pullerTTL bounds how long authentication handshakes (and the credentials
// they used) are reused, so a long-running server picks up new credentials.
const pullerTTL = 5 * time.Minute

// Remote looks tags up in their registries. It is safe for concurrent use
// and reuses connections and tokens across lookups.
type Remote struct {
	o *options

	mu       sync.Mutex
	puller   *remote.Puller
	pullerAt time.Time
	hs       handshakes
}

var _ Checker = (*Remote)(nil)

// NewRemote returns a Remote configured by opts.
func NewRemote(opts ...Option) (*Remote, error) {
	o, err := makeOptions(opts...)
	if err != nil {
		return nil, err
	}
	return &Remote{o: o}, nil
}

func (r *Remote) getPuller() (*remote.Puller, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.puller != nil && time.Since(r.pullerAt) < pullerTTL {
		return r.puller, nil
	}
	ropts := append(r.pullerOptions(),
		remote.WithAuthFromKeychain(r.o.keychain),
		remote.WithTransport(observeTransport{inner: r.o.transport}))
	p, err := remote.NewPuller(ropts...)
	if err != nil {
		return nil, fmt.Errorf("configuring registry client: %w", err)
	}
	r.puller, r.pullerAt = p, time.Now()
	return p, nil
}

// pullerOptions are the options every puller shares.
func (r *Remote) pullerOptions() []remote.Option {
	ropts := []remote.Option{
		// Retries are ours: they need per-attempt timeouts, Retry-After and
		// classification that go-containerregistry's transport lacks.
		remote.WithRetryPredicate(func(error) bool { return false }),
		remote.WithRetryStatusCodes(),
		remote.WithRetryBackoff(remote.Backoff{Steps: 1}),
	}
	if r.o.userAgent != "" {
		ropts = append(ropts, remote.WithUserAgent(r.o.userAgent))
	}
	return ropts
}

// plainHTTP reports whether registry host is reached over plain HTTP.
func (r *Remote) plainHTTP(host string) bool {
	if r.o.insecure[strings.ToLower(host)] {
		return true
	}
	return netaddr.LoopbackHost(host)
}

// withScheme returns ref marked insecure when its registry uses plain HTTP.
func (r *Remote) withScheme(ref name.Reference) (name.Reference, error) {
	if !r.plainHTTP(ref.Context().RegistryStr()) {
		return ref, nil
	}
	return name.ParseReference(ref.Name(), name.Insecure)
}

// Lookup asks ref's registry whether ref exists. It makes a manifest HEAD,
// falling back to a GET when the HEAD answer lacks a usable digest or to get
// the registry's message for a refusal, and retries rate limits, server
// errors and timeouts with backoff.
func (r *Remote) Lookup(ctx context.Context, ref name.Tag) Result {
	res := Result{Ref: ref}
	target, err := r.withScheme(ref)
	if err != nil {
		res.Err = &UnknownError{Ref: ref.Name(), Reason: ReasonOther, Message: err.Error(), Err: err}
		res.Message = res.Err.(*UnknownError).Message
		return res
	}
	useGet := false
	first := true
	var desc *v1.Descriptor
	try := func(ctx context.Context, last bool) error {
		if first && !last && r.prepared(target) == nil {
			// One anonymous request answers most lookups; see direct.
			first = false
			d, handled, err := r.direct(ctx, ref)
			if handled {
				desc = d
				return err
			}
		}
		p := r.prepared(target)
		if p == nil {
			var err error
			if p, err = r.getPuller(); err != nil {
				return err
			}
		}
		if !useGet {
			d, err := p.Head(ctx, target)
			if err == nil {
				desc = d
				return nil
			}
			var te *transport.Error
			switch {
			case errors.As(err, &te) && isManifestRequest(te):
				if te.StatusCode == http.StatusNotFound {
					return err
				}
				// A HEAD answer has no body: ask again with GET for the
				// registry's message, now if this is the final say.
				useGet = true
				if retryableStatus(te.StatusCode) && !last {
					return err
				}
			case errors.As(err, &te), isTransient(err), ctx.Err() != nil:
				return err
			default:
				// The HEAD answer lacked a digest, content type or length:
				// some registries omit them on HEAD. GET is authoritative.
				useGet = true
			}
		}
		d, err := getManifest(ctx, p, target)
		if err != nil {
			return err
		}
		desc = d
		return nil
	}
	f := r.retry(ctx, ref.Name(), try)
	switch {
	case f == nil:
		res.State, res.Digest, res.MediaType = Exists, desc.Digest, desc.MediaType
	case f.absent != nil:
		res.State, res.Message = Absent, f.absent.Message
	default:
		res.Message, res.Err = f.unknown.Message, f.unknown
	}
	return res
}

// getManifest GETs the manifest and checks that it is one.
func getManifest(ctx context.Context, p *remote.Puller, ref name.Reference) (*v1.Descriptor, error) {
	d, err := p.Get(ctx, ref)
	if err != nil {
		return nil, err
	}
	mt, err := manifestMediaType(d.Manifest, d.MediaType)
	if err != nil {
		return nil, err
	}
	desc := d.Descriptor
	desc.MediaType = mt
	return &desc, nil
}

// malformedError is a registry answer that is not a manifest.
type malformedError struct{ msg string }

func (e *malformedError) Error() string { return e.msg }

// manifestMediaType checks that b is a manifest or index and returns its
// media type (the header's, else the document's).
func manifestMediaType(b []byte, header types.MediaType) (types.MediaType, error) {
	var doc struct {
		SchemaVersion int             `json:"schemaVersion"`
		MediaType     types.MediaType `json:"mediaType"`
		Manifests     json.RawMessage `json:"manifests"`
		Config        json.RawMessage `json:"config"`
		FSLayers      json.RawMessage `json:"fsLayers"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return "", &malformedError{msg: "the answer is not JSON, so not a manifest"}
	}
	if doc.SchemaVersion == 0 || (doc.Manifests == nil && doc.Config == nil && doc.FSLayers == nil) {
		return "", &malformedError{msg: "answer is not a manifest or index"}
	}
	switch {
	case header != "" && header != "application/octet-stream":
		return header, nil
	case doc.MediaType != "":
		return doc.MediaType, nil
	case doc.Manifests != nil:
		return types.OCIImageIndex, nil
	default:
		return types.OCIManifestSchema1, nil
	}
}

// failure is a retry loop's final non-success answer: absent or unknown.
type failure struct {
	absent  *AbsentError
	unknown *UnknownError
}

// retry runs try until it succeeds, the registry says the manifest is
// absent, the failure is not worth retrying, or attempts run out. try is
// told whether it is the last attempt.
func (r *Remote) retry(ctx context.Context, ref string, try func(ctx context.Context, last bool) error) *failure {
	for attempt := 0; ; attempt++ {
		if ctx.Err() != nil {
			return ctxFailure(ctx, ref, attempt, ctx.Err())
		}
		obs := &observer{}
		actx, cancel := context.WithTimeout(withObserver(ctx, obs), r.o.attemptTimeout)
		err := try(actx, attempt == r.o.retries)
		timedOut := errors.Is(actx.Err(), context.DeadlineExceeded)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctxFailure(ctx, ref, attempt+1, err)
		}
		c := classify(err, timedOut)
		if c.absent {
			return &failure{absent: &AbsentError{Ref: ref, Message: c.message}}
		}
		if !c.temporary || attempt >= r.o.retries {
			return &failure{unknown: &UnknownError{
				Ref: ref, Reason: c.reason, Status: c.status, Message: c.message,
				Temporary: c.temporary, Attempts: attempt + 1, Err: err,
			}}
		}
		wait := r.backoff(attempt)
		if ra, ok := obs.retryAfter(); ok {
			wait = min(ra, r.o.backoffMax)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}

// ctxFailure reports that the caller's context ended: a timeout if its
// deadline passed, else a cancellation.
func ctxFailure(ctx context.Context, ref string, attempts int, err error) *failure {
	reason := ReasonCanceled
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		reason = ReasonTimeout
	}
	return &failure{unknown: &UnknownError{Ref: ref, Reason: reason, Message: ctx.Err().Error(), Attempts: attempts, Err: err}}
}

// backoff returns the wait after the given attempt: base·2^attempt ±10%,
// at most the maximum.
func (r *Remote) backoff(attempt int) time.Duration {
	d := r.o.backoffBase << min(attempt, 20)
	if d <= 0 || d > r.o.backoffMax {
		d = r.o.backoffMax
	}
	jitter := time.Duration(float64(d) * 0.1 * (2*rand.Float64() - 1))
	return min(d+jitter, r.o.backoffMax)
}

// class is an error's classification.
type class struct {
	absent    bool
	reason    Reason
	status    int
	message   string
	temporary bool
}

func classify(err error, timedOut bool) class {
	var te *transport.Error
	var me *malformedError
	var dnsErr *net.DNSError
	var netErr net.Error
	var certErr *tls.CertificateVerificationError
	switch {
	case errors.As(err, &te):
		return classifyStatus(te)
	case errors.As(err, &me):
		return class{reason: ReasonMalformed, message: me.msg}
	case timedOut || errors.Is(err, context.DeadlineExceeded):
		return class{reason: ReasonTimeout, message: "no answer within the attempt timeout", temporary: true}
	case errors.As(err, &dnsErr):
		return class{reason: ReasonNetwork, message: err.Error(), temporary: dnsErr.IsTemporary || dnsErr.IsTimeout}
	case errors.As(err, &certErr):
		return class{reason: ReasonNetwork, message: err.Error()}
	case errors.As(err, &netErr) && netErr.Timeout():
		return class{reason: ReasonTimeout, message: err.Error(), temporary: true}
	case isTransient(err):
		return class{reason: ReasonNetwork, message: err.Error(), temporary: true}
	case isURLError(err):
		return class{reason: ReasonNetwork, message: err.Error()}
	default:
		return class{reason: ReasonOther, message: err.Error()}
	}
}

func classifyStatus(te *transport.Error) class {
	c := class{status: te.StatusCode, message: registryMessage(te)}
	switch {
	case isManifestRequest(te) && (te.StatusCode == http.StatusNotFound || onlyCodes(te, transport.ManifestUnknownErrorCode, transport.NameUnknownErrorCode)):
		c.absent = true
	case te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden:
		c.reason = ReasonAuth
	case te.StatusCode == http.StatusTooManyRequests || onlyCodes(te, transport.TooManyRequestsErrorCode):
		c.reason, c.temporary = ReasonRateLimited, true
	case te.StatusCode >= 500:
		c.reason, c.temporary = ReasonUnavailable, retryableStatus(te.StatusCode)
	case te.StatusCode == http.StatusRequestTimeout:
		c.reason, c.temporary = ReasonTimeout, true
	default:
		c.reason = ReasonRejected
	}
	return c
}

// retryableStatus reports whether an HTTP status is worth asking again.
func retryableStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// onlyCodes reports whether te carries diagnostics, all with one of codes.
func onlyCodes(te *transport.Error, codes ...transport.ErrorCode) bool {
	if len(te.Errors) == 0 {
		return false
	}
	for _, d := range te.Errors {
		found := false
		for _, c := range codes {
			found = found || d.Code == c
		}
		if !found {
			return false
		}
	}
	return true
}

// isManifestRequest reports whether te answers a request for a manifest
// (rather than the /v2/ ping or a token).
func isManifestRequest(te *transport.Error) bool {
	return te.Request != nil && te.Request.URL != nil && strings.Contains(te.Request.URL.Path, "/manifests/")
}

// registryMessage is what the registry said: the code and message of
// each diagnostic of distribution's error format, or else the HTTP
// status. Never the response body, nor a diagnostic's free-form detail:
// a lookup may reach a server that is no registry, and its answer must not
// travel back to whoever asked.
func registryMessage(te *transport.Error) string {
	if len(te.Errors) == 0 {
		return fmt.Sprintf("unexpected status code %d %s", te.StatusCode, http.StatusText(te.StatusCode))
	}
	var parts []string
	for i, d := range te.Errors {
		if i == maxDiagnostics {
			parts = append(parts, fmt.Sprintf("and %d more", len(te.Errors)-i))
			break
		}
		parts = append(parts, clip(string(d.Code), 64)+": "+clip(d.Message, maxDiagnosticLen))
	}
	return strings.Join(parts, "; ")
}

// Bounds on the registry's words an error carries.
const (
	maxDiagnostics   = 4
	maxDiagnosticLen = 256
)

// clip keeps at most n bytes of s, whole characters only, with control
// characters replaced, so a message stays one short line.
func clip(s string, n int) string {
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "") + "..."
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

// isTransient reports network failures that may pass.
func isTransient(err error) bool {
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}

func isURLError(err error) bool {
	var ue *url.Error
	return errors.As(err, &ue)
}

// observer records what an attempt's HTTP answers said about retrying.
type observer struct {
	mu    sync.Mutex
	after time.Duration
	set   bool
}

func (o *observer) retryAfter() (time.Duration, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.after, o.set
}

type observerKey struct{}

func withObserver(ctx context.Context, o *observer) context.Context {
	return context.WithValue(ctx, observerKey{}, o)
}

// observeTransport notes Retry-After on 429 and 503 answers in the
// request context's observer.
type observeTransport struct{ inner http.RoundTripper }

func (t observeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.inner.RoundTrip(req)
	if err != nil || (resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable) {
		return resp, err
	}
	o, _ := req.Context().Value(observerKey{}).(*observer)
	if o == nil {
		return resp, err
	}
	if d, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
		o.mu.Lock()
		o.after, o.set = d, true
		o.mu.Unlock()
	}
	return resp, err
}

// parseRetryAfter reads delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0, false
		}
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

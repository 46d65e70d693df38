package cache

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestLookup(t *testing.T) {
	tr := newTestRegistry(t)
	present := tr.pushRandom(t, "team/app:present")

	status := func(code int, body string) fault {
		return func(w http.ResponseWriter, r *http.Request, n int) bool {
			registryError(w, r, code, "UNKNOWN", body)
			return true
		}
	}
	firstN := func(k int, f fault) fault {
		return func(w http.ResponseWriter, r *http.Request, n int) bool {
			return n <= k && f(w, r, n)
		}
	}
	headOnly := func(f fault) fault {
		return func(w http.ResponseWriter, r *http.Request, n int) bool {
			return r.Method == http.MethodHead && f(w, r, n)
		}
	}
	var reqs atomic.Int64
	counting := func(f fault) fault {
		return func(w http.ResponseWriter, r *http.Request, n int) bool {
			reqs.Add(1)
			return f != nil && f(w, r, n)
		}
	}

	tests := []struct {
		name        string
		ref         string
		fault       fault
		opts        []Option
		want        State
		wantDigest  bool
		wantReason  Reason
		wantTemp    bool
		wantMsg     string // substring of the message
		hideMsg     string // must not be in the message
		minDuration time.Duration
		maxDuration time.Duration
	}{
		{name: "exists", ref: "team/app:present", want: Exists, wantDigest: true},
		{name: "absent tag", ref: "team/app:missing", want: Absent},
		{name: "absent repository", ref: "team/nothing:here", want: Absent},
		{
			name: "500 after retries is unknown with message", ref: "team/app:present",
			fault: status(500, "database on fire"),
			want:  Unknown, wantReason: ReasonUnavailable, wantTemp: true, wantMsg: "database on fire",
		},
		{
			name: "503 then 200 is retried", ref: "team/app:present",
			fault: firstN(2, status(503, "busy")), want: Exists, wantDigest: true,
		},
		{
			name: "401", ref: "team/app:present",
			fault: func(w http.ResponseWriter, r *http.Request, n int) bool {
				registryError(w, r, 401, "UNAUTHORIZED", "authentication required")
				return true
			},
			want: Unknown, wantReason: ReasonAuth, wantMsg: "UNAUTHORIZED: authentication required",
		},
		{
			name: "403 for a missing tag is unknown, never exists", ref: "team/app:missing",
			fault: func(w http.ResponseWriter, r *http.Request, n int) bool {
				registryError(w, r, 403, "DENIED", "requested access to the resource is denied")
				return true
			},
			want: Unknown, wantReason: ReasonAuth, wantMsg: "DENIED: requested access to the resource is denied",
		},
		{
			name: "500 for a missing tag is unknown, never exists", ref: "team/app:missing",
			fault: status(500, "internal"), opts: []Option{WithRetries(0)},
			want: Unknown, wantReason: ReasonUnavailable, wantTemp: true, wantMsg: "internal",
		},
		{
			name: "429 with Retry-After then 200", ref: "team/app:present",
			fault: firstN(1, func(w http.ResponseWriter, r *http.Request, n int) bool {
				w.Header().Set("Retry-After", "1")
				registryError(w, r, 429, "TOOMANYREQUESTS", "slow down")
				return true
			}),
			// Retry-After 1s is honoured up to the 200ms cap, not the 1ms base.
			want: Exists, wantDigest: true, minDuration: 150 * time.Millisecond,
		},
		{
			name: "429 forever is rate limited", ref: "team/app:present",
			fault: func(w http.ResponseWriter, r *http.Request, n int) bool {
				registryError(w, r, 429, "TOOMANYREQUESTS", "slow down")
				return true
			},
			want: Unknown, wantReason: ReasonRateLimited, wantTemp: true, wantMsg: "slow down",
		},
		{
			name: "hung connection is bounded by the attempt timeout", ref: "team/app:present",
			fault: func(w http.ResponseWriter, r *http.Request, n int) bool {
				<-r.Context().Done()
				return true
			},
			opts: []Option{WithAttemptTimeout(150 * time.Millisecond), WithRetries(1)},
			want: Unknown, wantReason: ReasonTimeout, wantTemp: true, maxDuration: 2 * time.Second,
		},
		{
			name: "HEAD without digest falls back to GET", ref: "team/app:present",
			fault: headOnly(func(w http.ResponseWriter, r *http.Request, n int) bool {
				w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
				w.Header().Set("Content-Length", "10")
				w.WriteHeader(200)
				return true
			}),
			want: Exists, wantDigest: true,
		},
		{
			name: "HEAD with invalid digest falls back to GET", ref: "team/app:present",
			fault: headOnly(func(w http.ResponseWriter, r *http.Request, n int) bool {
				w.Header().Set("Docker-Content-Digest", "sha256:not-a-digest")
				w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
				w.Header().Set("Content-Length", "10")
				w.WriteHeader(200)
				return true
			}),
			want: Exists, wantDigest: true,
		},
		{
			name: "malformed answer is unknown", ref: "team/app:present",
			fault: func(w http.ResponseWriter, r *http.Request, n int) bool {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(200)
				if r.Method == http.MethodGet {
					w.Write([]byte("<html>login portal</html>"))
				}
				return true
			},
			want: Unknown, wantReason: ReasonMalformed, wantMsg: "not JSON",
		},
		{
			name: "a body that is not a registry error is not echoed", ref: "team/app:present",
			fault: func(w http.ResponseWriter, r *http.Request, n int) bool {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusForbidden)
				if r.Method == http.MethodGet {
					w.Write([]byte("<html>internal admin page: the host's secret</html>"))
				}
				return true
			},
			want: Unknown, wantReason: ReasonAuth, wantMsg: "unexpected status code 403 Forbidden", hideMsg: "the host's secret",
		},
		{
			name: "a diagnostic's detail is not echoed", ref: "team/app:present",
			fault: func(w http.ResponseWriter, r *http.Request, n int) bool {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusForbidden)
				if r.Method == http.MethodGet {
					w.Write([]byte(`{"errors":[{"code":"DENIED","message":"no\nway","detail":{"page":"the host's secret"}}]}`))
				}
				return true
			},
			want: Unknown, wantReason: ReasonAuth, wantMsg: "DENIED: no way", hideMsg: "the host's secret",
		},
		{
			name: "redirect to the same registry is followed", ref: "team/app:present",
			fault: func(w http.ResponseWriter, r *http.Request, n int) bool {
				if r.URL.Query().Get("moved") != "" {
					return false
				}
				http.Redirect(w, r, r.URL.Path+"?moved=1", http.StatusTemporaryRedirect)
				return true
			},
			want: Exists, wantDigest: true,
		},
		{
			name: "requests are counted", ref: "team/app:present", fault: counting(nil),
			want: Exists, wantDigest: true,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr.setFault(tc.fault)
			defer tr.setFault(nil)
			r := newRemote(t, tc.opts...)
			start := time.Now()
			got := r.Lookup(ctxTimeout(t, 10*time.Second), tr.tag(t, tc.ref))
			took := time.Since(start)

			if got.State != tc.want {
				t.Fatalf("Lookup(%s).State = %v (%v), want %v", tc.ref, got.State, got.Err, tc.want)
			}
			if tc.wantDigest && got.Digest != present {
				t.Errorf("Lookup(%s).Digest = %v, want %v", tc.ref, got.Digest, present)
			}
			if got.State == Exists && got.MediaType == "" {
				t.Errorf("Lookup(%s).MediaType is empty", tc.ref)
			}
			if (got.State == Unknown) != (got.Err != nil) {
				t.Errorf("Lookup(%s): State %v with Err %v", tc.ref, got.State, got.Err)
			}
			if tc.want == Unknown {
				var ue *UnknownError
				if !errors.As(got.Err, &ue) {
					t.Fatalf("Lookup(%s).Err = %T %v, want *UnknownError", tc.ref, got.Err, got.Err)
				}
				if ue.Reason != tc.wantReason {
					t.Errorf("Reason = %q, want %q (%v)", ue.Reason, tc.wantReason, ue)
				}
				if ue.Temporary != tc.wantTemp {
					t.Errorf("Temporary = %v, want %v", ue.Temporary, tc.wantTemp)
				}
				if !strings.Contains(ue.Error(), tc.wantMsg) || !strings.Contains(got.Message, tc.wantMsg) {
					t.Errorf("error %q / message %q, want them to contain %q", ue.Error(), got.Message, tc.wantMsg)
				}
				if tc.hideMsg != "" && (strings.Contains(ue.Error(), tc.hideMsg) || strings.Contains(got.Message, tc.hideMsg)) {
					t.Errorf("error %q / message %q carry the answer's body", ue.Error(), got.Message)
				}
				if !strings.HasPrefix(ue.Error(), "looking up "+tr.host()) {
					t.Errorf("error %q does not start with the reference", ue.Error())
				}
			}
			if tc.minDuration > 0 && took < tc.minDuration {
				t.Errorf("took %v, want at least %v", took, tc.minDuration)
			}
			if tc.maxDuration > 0 && took > tc.maxDuration {
				t.Errorf("took %v, want at most %v", took, tc.maxDuration)
			}
		})
	}
	if n := reqs.Load(); n != 1 {
		t.Errorf("a healthy lookup made %d manifest requests, want 1 (HEAD)", n)
	}
}

func TestLookupRetryCount(t *testing.T) {
	tr := newTestRegistry(t)
	tr.pushRandom(t, "team/app:present")
	tr.setFault(func(w http.ResponseWriter, r *http.Request, n int) bool {
		registryError(w, r, 502, "UNAVAILABLE", "bad gateway")
		return true
	})
	got := newRemote(t, WithRetries(3)).Lookup(context.Background(), tr.tag(t, "team/app:present"))
	var ue *UnknownError
	if !errors.As(got.Err, &ue) {
		t.Fatalf("Err = %v, want *UnknownError", got.Err)
	}
	if ue.Attempts != 4 || tr.manifestReqs.Load() != 4 {
		t.Errorf("attempts = %d, manifest requests = %d, want 4 and 4", ue.Attempts, tr.manifestReqs.Load())
	}
	if ue.Status != 502 {
		t.Errorf("Status = %d, want 502", ue.Status)
	}
}

func TestLookupNotARegistry(t *testing.T) {
	tr := newTestRegistry(t)
	srv := tr.faulty
	// A /v2/ that answers 404 is not a registry: unknown, not absent.
	h := http.NewServeMux()
	h.HandleFunc("/", http.NotFound)
	srv.Config.Handler = h
	got := newRemote(t).Lookup(context.Background(), tr.tag(t, "team/app:present"))
	var ue *UnknownError
	if got.State != Unknown || !errors.As(got.Err, &ue) || ue.Reason != ReasonRejected {
		t.Fatalf("Lookup = %v %v, want unknown (rejected)", got.State, got.Err)
	}
}

func TestLookupConnectionRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ref, _ := name.NewTag(addr + "/team/app:x")
	got := newRemote(t, WithRetries(1)).Lookup(context.Background(), ref)
	var ue *UnknownError
	if got.State != Unknown || !errors.As(got.Err, &ue) || ue.Reason != ReasonNetwork {
		t.Fatalf("Lookup = %v %v, want unknown (network)", got.State, got.Err)
	}
}

func TestLookupCanceled(t *testing.T) {
	tr := newTestRegistry(t)
	tr.setFault(func(w http.ResponseWriter, r *http.Request, n int) bool {
		<-r.Context().Done()
		return true
	})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	got := newRemote(t).Lookup(ctx, tr.tag(t, "team/app:present"))
	var ue *UnknownError
	if !errors.As(got.Err, &ue) || ue.Reason != ReasonTimeout || ue.Attempts != 1 {
		t.Fatalf("Lookup = %v %v, want unknown (timeout) after 1 attempt", got.State, got.Err)
	}
	if !errors.Is(got.Err, context.DeadlineExceeded) {
		t.Errorf("Err %v does not wrap context.DeadlineExceeded", got.Err)
	}
	if took := time.Since(start); took > time.Second {
		t.Errorf("took %v after the context ended", took)
	}
}

func TestInsecureRegistries(t *testing.T) {
	r := newRemote(t, WithInsecureRegistries("registry.internal:5000"))
	for _, tc := range []struct {
		ref    string
		scheme string
	}{
		{"registry.internal:5000/a:b", "http"},
		{"localhost/a:b", "http"},
		{"[::1]:5000/a:b", "http"},
		{"ghcr.io/a:b", "https"},
		{"registry.internal/a:b", "https"},
	} {
		ref, err := name.NewTag(tc.ref)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.withScheme(ref)
		if err != nil {
			t.Fatal(err)
		}
		if s := got.Context().Scheme(); s != tc.scheme {
			t.Errorf("scheme for %s = %s, want %s", tc.ref, s, tc.scheme)
		}
	}
}

func TestOptionErrors(t *testing.T) {
	for name, opt := range map[string]Option{
		"negative retries": WithRetries(-1),
		"zero backoff":     WithBackoff(0, time.Second),
		"max below base":   WithBackoff(time.Second, time.Millisecond),
		"zero timeout":     WithAttemptTimeout(0),
		"nil keychain":     WithKeychain(nil),
		"nil transport":    WithTransport(nil),
		"insecure path":    WithInsecureRegistries("host/path"),
	} {
		if _, err := NewRemote(opt); err == nil {
			t.Errorf("NewRemote(%s) succeeded, want an error", name)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"3", 3 * time.Second, true},
		{"0", 0, true},
		{"-1", 0, false},
		{"", 0, false},
		{"soon", 0, false},
		{now.Add(5 * time.Second).Format(http.TimeFormat), 5 * time.Second, true},
		{now.Add(-5 * time.Second).Format(http.TimeFormat), 0, true},
	} {
		got, ok := parseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseRetryAfter(%q) = %v, %v, want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestResultPinned(t *testing.T) {
	ref, _ := name.NewTag("ghcr.io/a/b:t")
	h := v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("a", 64)}
	if got, want := (Result{Ref: ref, State: Exists, Digest: h}).Pinned(), "ghcr.io/a/b:t@sha256:"+h.Hex; got != want {
		t.Errorf("Pinned() = %q, want %q", got, want)
	}
	if got := (Result{Ref: ref, State: Unknown, Digest: h}).Pinned(); got != "" {
		t.Errorf("Pinned() of unknown = %q, want empty", got)
	}
	if Unknown.String() != "unknown" || State(0) != Unknown {
		t.Error("the zero State must be Unknown")
	}
}

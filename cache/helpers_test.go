package cache

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// fault decides how to answer the n-th (1-based) manifest request; it
// returns false to let the registry answer.
type fault func(w http.ResponseWriter, r *http.Request, n int) bool

// testRegistry is an in-memory registry reachable twice: directly, and
// through a fault-injecting handler.
type testRegistry struct {
	direct, faulty *httptest.Server
	fault          atomic.Pointer[fault]
	manifestReqs   atomic.Int64
	allReqs        atomic.Int64
}

func newTestRegistry(t testing.TB) *testRegistry {
	t.Helper()
	reg := registry.New(registry.Logger(nopLogger()))
	tr := &testRegistry{direct: httptest.NewServer(reg)}
	tr.faulty = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tr.allReqs.Add(1)
		if strings.Contains(r.URL.Path, "/manifests/") {
			n := int(tr.manifestReqs.Add(1))
			if f := tr.fault.Load(); f != nil && (*f)(w, r, n) {
				return
			}
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(tr.faulty.Close)
	t.Cleanup(tr.direct.Close)
	return tr
}

// setFault installs f and restarts the request counts.
func (tr *testRegistry) setFault(f fault) {
	tr.manifestReqs.Store(0)
	tr.allReqs.Store(0)
	if f == nil {
		tr.fault.Store(nil)
		return
	}
	tr.fault.Store(&f)
}

// host is the faulty server's host:port.
func (tr *testRegistry) host() string { return strings.TrimPrefix(tr.faulty.URL, "http://") }

func (tr *testRegistry) directHost() string { return strings.TrimPrefix(tr.direct.URL, "http://") }

// tag parses repo:tag on the faulty host.
func (tr *testRegistry) tag(t testing.TB, repoTag string) name.Tag {
	t.Helper()
	ref, err := name.NewTag(tr.host() + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// pushRandom pushes a random image to repoTag directly and returns its digest.
func (tr *testRegistry) pushRandom(t testing.TB, repoTag string) v1.Hash {
	t.Helper()
	img, err := random.Image(256, 1)
	if err != nil {
		t.Fatal(err)
	}
	return tr.push(t, repoTag, img)
}

func (tr *testRegistry) push(t testing.TB, repoTag string, img remote.Taggable) v1.Hash {
	t.Helper()
	ref, err := name.NewTag(tr.directHost() + "/" + repoTag)
	if err != nil {
		t.Fatal(err)
	}
	switch x := img.(type) {
	case v1.Image:
		err = remote.Write(ref, x)
	case v1.ImageIndex:
		err = remote.WriteIndex(ref, x)
	default:
		err = fmt.Errorf("unsupported %T", img)
	}
	if err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	d, err := remote.Head(ref)
	if err != nil {
		t.Fatal(err)
	}
	return d.Digest
}

// platformImage returns a random image whose config states p.
func platformImage(t testing.TB, p v1.Platform) v1.Image {
	t.Helper()
	img, err := random.Image(128, 1)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// multiPlatform returns an index of one image per platform.
func multiPlatform(t testing.TB, ps ...v1.Platform) (v1.ImageIndex, []v1.Hash) {
	t.Helper()
	idx := v1.ImageIndex(empty.Index)
	var digests []v1.Hash
	for _, p := range ps {
		img := platformImage(t, p)
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{Platform: &p}})
	}
	return idx, digests
}

// fast returns options that keep tests quick.
func fast(extra ...Option) []Option {
	return append([]Option{
		WithRetries(2),
		WithBackoff(time.Millisecond, 200*time.Millisecond),
		WithAttemptTimeout(2 * time.Second),
		WithKeychain(anonymousKeychain{}),
	}, extra...)
}

func newRemote(t testing.TB, opts ...Option) *Remote {
	t.Helper()
	r, err := NewRemote(fast(opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// failingTransport fails the test if any request is made.
type failingTransport struct{ t testing.TB }

func (f failingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	f.t.Errorf("unexpected network request: %s %s", r.Method, r.URL)
	return nil, fmt.Errorf("network disabled in this test")
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// registryError writes a distribution-style error body.
func registryError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		fmt.Fprintf(w, `{"errors":[{"code":%q,"message":%q}]}`, code, msg)
	}
}

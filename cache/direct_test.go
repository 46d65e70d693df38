package cache

import (
	"context"
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
)

// staticKeychain gives the same credentials for every registry.
type staticKeychain struct{ auth authn.Authenticator }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) { return k.auth, nil }

// TestDirectLookup: without credentials a lookup is one manifest request,
// with no /v2/ handshake; with credentials, or when the registry asks for
// them, the handshake runs as before.
func TestDirectLookup(t *testing.T) {
	tr := newTestRegistry(t)
	digest := tr.pushRandom(t, "team/app:present")
	ref := tr.tag(t, "team/app:present")

	cases := []struct {
		name       string
		keychain   authn.Keychain
		fault      fault
		wantOthers int64 // requests besides manifest requests
	}{
		{"anonymous", authn.NewMultiKeychain(), nil, 0},
		{"credentials", staticKeychain{&authn.Basic{Username: "u", Password: "p"}}, nil, 1},
		{"registry asks for a token", authn.NewMultiKeychain(), func(w http.ResponseWriter, r *http.Request, n int) bool {
			if n == 1 {
				w.Header().Set("WWW-Authenticate", `Basic realm="registry"`)
				w.WriteHeader(http.StatusUnauthorized)
				return true
			}
			return false
		}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tr.setFault(tc.fault)
			got := newRemote(t, WithKeychain(tc.keychain)).Lookup(context.Background(), ref)
			if got.State != Exists || got.Digest != digest {
				t.Fatalf("Lookup = %v %v %v, want Exists %v", got.State, got.Digest, got.Err, digest)
			}
			if others := tr.allReqs.Load() - tr.manifestReqs.Load(); others != tc.wantOthers {
				t.Errorf("%d requests besides manifests, want %d", others, tc.wantOthers)
			}
		})
	}
	t.Run("absent in one request", func(t *testing.T) {
		// As the distribution registry answers: its API version header on
		// every response, a 404 for an unknown manifest.
		tr.setFault(func(w http.ResponseWriter, r *http.Request, n int) bool {
			w.Header().Set("Docker-Distribution-Api-Version", "registry/2.0")
			w.WriteHeader(http.StatusNotFound)
			return true
		})
		got := newRemote(t, WithKeychain(authn.NewMultiKeychain())).Lookup(context.Background(), tr.tag(t, "team/app:missing"))
		if got.State != Absent {
			t.Fatalf("Lookup = %v %v, want Absent", got.State, got.Err)
		}
		if all := tr.allReqs.Load(); all != 1 {
			t.Errorf("%d requests, want 1", all)
		}
	})
	t.Run("a 404 from a server that is not a registry is not absent", func(t *testing.T) {
		tr.setFault(func(w http.ResponseWriter, r *http.Request, n int) bool {
			http.NotFound(w, r)
			return true
		})
		got := newRemote(t, WithKeychain(authn.NewMultiKeychain())).Lookup(context.Background(), tr.tag(t, "team/app:present"))
		if got.State == Exists {
			t.Fatalf("Lookup = Exists for a server that answers 404 to everything")
		}
		if got.State == Absent && tr.allReqs.Load() < 2 {
			t.Errorf("absent after %d request(s): the server was not confirmed to be a registry", tr.allReqs.Load())
		}
	})
}

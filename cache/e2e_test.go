package cache_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/ispec-dev/ispec/cache"
	"github.com/ispec-dev/ispec/internal/testenv"
)

// pushRandom pushes a random image to ref and returns its digest.
func pushRandom(t *testing.T, ref name.Tag, opts ...remote.Option) v1.Hash {
	t.Helper()
	img, err := random.Image(512, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img, opts...); err != nil {
		t.Fatalf("pushing %s: %v", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestEndToEndDistribution(t *testing.T) {
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{})
	// An empty Docker config, so the machine's credentials play no part.
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	tag := fmt.Sprintf("%s/ispec/e2e:%d", reg.Host, time.Now().UnixNano())
	ref, _ := name.NewTag(tag)
	want := pushRandom(t, ref)

	r, err := cache.NewRemote()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	got := r.Lookup(ctx, ref)
	if got.State != cache.Exists || got.Digest != want {
		t.Fatalf("Lookup(%s) = %v %v (%v), want exists %v", ref, got.State, got.Digest, got.Err, want)
	}
	other, _ := name.NewTag(reg.Host + "/ispec/e2e:other")
	if got := r.Lookup(ctx, other); got.State != cache.Absent {
		t.Errorf("Lookup(other tag) = %v (%v), want absent", got.State, got.Err)
	}
	norepo, _ := name.NewTag(reg.Host + "/ispec/nothing:here")
	if got := r.Lookup(ctx, norepo); got.State != cache.Absent {
		t.Errorf("Lookup(other repository) = %v (%v), want absent", got.State, got.Err)
	}

	// The cached decorator records the answer and then needs no registry.
	idx, err := cache.OpenIndex(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if got := cache.NewCached(r, idx).Lookup(ctx, ref); got.State != cache.Exists || got.FromIndex {
		t.Fatalf("cached miss = %+v", got)
	}
	offline, _ := cache.NewRemote(cache.WithRetries(0), cache.WithAttemptTimeout(time.Second), cache.WithTransport(deadTransport{}))
	if got := cache.NewCached(offline, idx).Lookup(ctx, ref); got.State != cache.Exists || !got.FromIndex || got.Digest != want {
		t.Fatalf("cached hit = %+v", got)
	}

	res, err := r.ResolvePlatforms(ctx, ref, nil)
	if err != nil || res.Digest != want {
		t.Errorf("ResolvePlatforms = %v, %v, want %v", res.Digest, err, want)
	}
}

func TestEndToEndDistributionAuth(t *testing.T) {
	const user, pass = "ispec", "correct horse battery staple"
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{Username: user, Password: pass})
	ref, _ := name.NewTag(reg.Host + "/ispec/private:v1")
	want := pushRandom(t, ref, remote.WithAuth(&authn.Basic{Username: user, Password: pass}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	t.Run("no credentials", func(t *testing.T) {
		t.Setenv("DOCKER_CONFIG", t.TempDir())
		r, err := cache.NewRemote(cache.WithRetries(0))
		if err != nil {
			t.Fatal(err)
		}
		got := r.Lookup(ctx, ref)
		var ue *cache.UnknownError
		if got.State != cache.Unknown || !errors.As(got.Err, &ue) || ue.Reason != cache.ReasonAuth {
			t.Fatalf("Lookup without credentials = %v %v, want unknown (auth)", got.State, got.Err)
		}
		t.Logf("error: %v", got.Err)
	})
	t.Run("wrong password", func(t *testing.T) {
		writeDockerConfig(t, reg.Host, user, "wrong")
		r, _ := cache.NewRemote(cache.WithRetries(0))
		got := r.Lookup(ctx, ref)
		var ue *cache.UnknownError
		if got.State != cache.Unknown || !errors.As(got.Err, &ue) || ue.Reason != cache.ReasonAuth {
			t.Fatalf("Lookup with a wrong password = %v %v, want unknown (auth)", got.State, got.Err)
		}
		if containsAny(got.Err.Error(), "wrong", base64.StdEncoding.EncodeToString([]byte(user+":wrong"))) {
			t.Errorf("error reveals the credentials: %v", got.Err)
		}
	})
	t.Run("docker config credentials", func(t *testing.T) {
		writeDockerConfig(t, reg.Host, user, pass)
		r, _ := cache.NewRemote()
		got := r.Lookup(ctx, ref)
		if got.State != cache.Exists || got.Digest != want {
			t.Fatalf("Lookup with credentials = %v %v (%v), want exists %v", got.State, got.Digest, got.Err, want)
		}
		missing, _ := name.NewTag(reg.Host + "/ispec/private:v2")
		if got := r.Lookup(ctx, missing); got.State != cache.Absent {
			t.Errorf("Lookup(missing tag) with credentials = %v (%v), want absent", got.State, got.Err)
		}
	})
}

// writeDockerConfig points DOCKER_CONFIG at a config.json holding user:pass
// for host.
func writeDockerConfig(t *testing.T, host, user, pass string) {
	t.Helper()
	dir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + pass))
	cfg := fmt.Sprintf(`{"auths":{%q:{"auth":%q}}}`, host, auth)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CONFIG", dir)
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// deadTransport refuses every request.
type deadTransport struct{}

func (deadTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("network disabled in this test")
}

package builder

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/docker/cli/cli/config/configfile"
	"github.com/docker/cli/cli/config/types"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ispec-dev/ispec/builder/progress"
	"github.com/ispec-dev/ispec/internal/testenv"
)

// stepsCached maps each [ispec] step's name to whether BuildKit reported
// it cached.
func stepsCached(events []*progress.Status) map[string]bool {
	out := map[string]bool{}
	for _, s := range events {
		for _, v := range s.Vertexes {
			if !strings.HasPrefix(v.Name, "[ispec]") || v.Completed == nil {
				continue
			}
			out[v.Name] = out[v.Name] || v.Cached
		}
	}
	return out
}

// stepCached finds the step whose name starts with prefix.
func stepCached(t *testing.T, steps map[string]bool, prefix string) bool {
	t.Helper()
	for n, c := range steps {
		if strings.HasPrefix(n, prefix) {
			return c
		}
	}
	t.Fatalf("no step %q among %v", prefix, steps)
	return false
}

// cacheOpts imports from and exports to every ref of refs.
func cacheOpts(refs CacheRefs) BuildOptions {
	return BuildOptions{CacheImports: refs.Refs(), CacheExports: refs.Refs()}
}

// headOK tells whether ref exists in its (plain HTTP) registry.
func headOK(t *testing.T, ref string, opts ...remote.Option) bool {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	_, err = remote.Head(r, opts...)
	return err == nil
}

// TestE2ERegistryCache: a spec built on daemon A exports its cache to the
// registry; a fresh daemon B, which never built anything, builds a variant
// with one pip package changed, reusing the apt and venv steps from the
// registry; the image is the one a cold build gives.
func TestE2ERegistryCache(t *testing.T) {
	env := loadDevEnv(t)
	a := newE2EBuilder(t, env)
	repo := fmt.Sprintf("e2e-regcache-%d", time.Now().UnixNano())
	dir := t.TempDir()
	cmds := []string{"python -c 'import ispec_demo_a' && jq --version"}
	doc1, files := e2eSpec(env, repo, "1.0.0", cmds)
	img1 := loadSpecIn(t, dir, doc1, files)
	refs, err := RegistryCacheRefs(img1, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(refs.Repo, env.Registry+"/"+repo+"/") || !strings.HasPrefix(refs.Family, env.Registry+"/"+repo+"/ispec-cache:family-") {
		t.Fatalf("refs = %+v", refs)
	}

	// The cache references do not exist yet: the build runs as without.
	res1, _, err := build(t, a, img1, cacheOpts(refs))
	if err != nil {
		t.Fatalf("build on daemon A: %v", err)
	}
	if len(res1.Warnings) != 0 {
		t.Errorf("a first build (no cache yet) warned: %q", res1.Warnings)
	}
	for _, r := range refs.Refs() {
		if !headOK(t, r) {
			t.Errorf("the cache %s was not exported", r)
		}
	}
	if d := testenv.Pull(t, res1.Ref); d == nil {
		t.Fatal("image not pushed")
	}

	doc2, _ := e2eSpec(env, repo, "1.1.0", cmds)
	img2 := loadSpecIn(t, dir, doc2, files)
	refs2, _ := RegistryCacheRefs(img2, "", "")
	if refs2 != refs {
		t.Fatalf("the variant's cache refs %+v differ from %+v", refs2, refs)
	}

	bk := env.StartBuildkitd(t)
	b, err := New(context.Background(), Options{Addr: bk.Host, Version: "e2e"})
	if err != nil {
		t.Fatalf("connecting to daemon B: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	res2, events, err := build(t, b, img2, cacheOpts(refs))
	if err != nil {
		t.Fatalf("build on daemon B: %v", err)
	}
	if len(res2.Warnings) != 0 {
		t.Errorf("warnings: %q", res2.Warnings)
	}
	steps := stepsCached(events)
	if !stepCached(t, steps, "[ispec] apt-get install") {
		t.Errorf("daemon B ran the apt step again: %v", steps)
	}
	if !stepCached(t, steps, "[ispec] python") && !stepCached(t, steps, "[ispec] python3") {
		t.Errorf("daemon B ran the venv step again: %v", steps)
	}
	if stepCached(t, steps, "[ispec] pip install") {
		t.Errorf("the pip step of a changed package was reported cached: %v", steps)
	}

	// A cold build of the variant (no cache, no import, no export) gives
	// the same image: the cache changes nothing in it.
	cold, _, err := build(t, a, img2, BuildOptions{NoCache: true})
	if err != nil {
		t.Fatalf("cold build: %v", err)
	}
	if cold.Digest != res2.Digest {
		t.Errorf("daemon B with the registry cache gave %s, a cold build %s", res2.Digest, cold.Digest)
		compareLayers(t, testenv.Pull(t, cold.Ref+"@"+cold.Digest), testenv.Pull(t, res2.Ref+"@"+res2.Digest))
	}
}

// refusingProxy is a registry in front of env's that refuses what
// refuse says, with status code.
func refusingProxy(t *testing.T, env *testenv.Env, code int, refuse func(*http.Request) bool) string {
	t.Helper()
	return refusingProxyWith(t, env, func(w http.ResponseWriter, r *http.Request) bool {
		if !refuse(r) {
			return false
		}
		if code == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Basic realm="ispec-test"`)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"errors":[{"code":"DENIED","message":"refused by the test"}]}`)
		return true
	})
}

// refusingProxyWith is a registry in front of env's; answer answers a
// request itself and returns true, or returns false to pass it on.
func refusingProxyWith(t *testing.T, env *testenv.Env, answer func(http.ResponseWriter, *http.Request) bool) string {
	t.Helper()
	target, _ := url.Parse("http://" + env.Registry)
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !answer(w, r) {
			proxy.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestE2ERegistryCacheRefused: a cache registry that refuses writes, or
// every request, never fails the build: the image is pushed, with one
// warning.
func TestE2ERegistryCacheRefused(t *testing.T) {
	env := loadDevEnv(t)
	a := newE2EBuilder(t, env)
	writes := func(r *http.Request) bool { return r.Method != http.MethodGet && r.Method != http.MethodHead }
	all := func(*http.Request) bool { return true }
	for _, tc := range []struct {
		name   string
		code   int
		refuse func(*http.Request) bool
		want   string
	}{
		{"read-only", http.StatusForbidden, writes, "403"},
		{"auth error", http.StatusUnauthorized, all, "401"},
		{"server error", http.StatusInternalServerError, writes, "500"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cacheReg := refusingProxy(t, env, tc.code, tc.refuse)
			doc := fmt.Sprintf("name: refused\nregistry: %s/e2e-regcache-refused-%d\nbase_image: %s\ncommands: [\"echo %s > /x\"]\n",
				env.Registry, time.Now().UnixNano(), env.BaseBusybox, tc.name)
			img := loadSpec(t, doc, nil)
			refs, err := RegistryCacheRefs(img, "", cacheReg+"/ci")
			if err != nil {
				t.Fatal(err)
			}
			res, _, err := build(t, a, img, cacheOpts(refs))
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			if len(res.Warnings) != 1 {
				t.Fatalf("warnings = %q, want one", res.Warnings)
			}
			w := res.Warnings[0]
			for _, want := range []string{refs.Repo, refs.Family, "not written"} {
				if !strings.Contains(w, want) {
					t.Errorf("warning %q lacks %q", w, want)
				}
			}
			t.Logf("warning: %s", w)
			if tc.code == http.StatusUnauthorized && !strings.Contains(w, "not read from") {
				t.Errorf("warning %q does not say the cache could not be read", w)
			}
			im := testenv.Pull(t, img.Identity.Ref)
			if d, _ := im.Digest(); d.String() != res.Digest {
				t.Errorf("pushed digest %s, result %s", d, res.Digest)
			}
			for _, r := range refs.Refs() {
				if headOK(t, strings.Replace(r, cacheReg, env.Registry, 1)) {
					t.Errorf("%s was written through a refusing registry", r)
				}
			}
		})
	}
}

// TestE2ERegistryCacheCredentials: the cache registry's credentials come
// from the same Docker config as the image registry's.
func TestE2ERegistryCacheCredentials(t *testing.T) {
	env := loadDevEnv(t)
	const user, pass = "cache-user", "cache-password-e2e"
	reg := testenv.StartRegistry(t, testenv.RegistryOptions{Username: user, Password: pass})
	cfg := configfile.New("")
	cfg.AuthConfigs = map[string]types.AuthConfig{reg.Host: {Username: user, Password: pass}}
	b := newE2EBuilderWith(t, env, cfg)
	doc := fmt.Sprintf("name: creds\nregistry: %s/e2e-regcache-creds-%d\nbase_image: %s\ncommands: [\"echo creds > /x\"]\n",
		env.Registry, time.Now().UnixNano(), env.BaseBusybox)
	img := loadSpec(t, doc, nil)
	refs, err := RegistryCacheRefs(img, "", reg.Host+"/shared")
	if err != nil {
		t.Fatal(err)
	}
	res, _, err := build(t, b, img, cacheOpts(refs))
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if len(res.Warnings) != 0 {
		t.Errorf("warnings: %q", res.Warnings)
	}
	auth := remote.WithAuth(&authn.Basic{Username: user, Password: pass})
	for _, r := range refs.Refs() {
		if !headOK(t, r, auth) {
			t.Errorf("the cache %s was not exported to the authenticated registry", r)
		}
	}

	// Without credentials the same build succeeds, with one warning.
	nb := newE2EBuilderWith(t, env, configfile.New(""))
	img2 := loadSpec(t, strings.Replace(doc, "echo creds", "echo nocreds", 1), nil)
	res2, _, err := build(t, nb, img2, cacheOpts(refs))
	if err != nil {
		t.Fatalf("Build without credentials: %v", err)
	}
	if len(res2.Warnings) != 1 {
		t.Errorf("warnings = %q, want one", res2.Warnings)
	}
	for _, w := range res2.Warnings {
		if strings.Contains(w, pass) {
			t.Errorf("a warning holds the password: %q", w)
		}
	}
}

func newE2EBuilderWith(t *testing.T, env *testenv.Env, cfg *configfile.ConfigFile) *Builder {
	t.Helper()
	b, err := New(context.Background(), Options{Addr: env.BuildkitHost, Version: "e2e", DockerConfig: cfg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

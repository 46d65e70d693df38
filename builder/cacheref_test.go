package builder

import (
	"regexp"
	"strings"
	"testing"

	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"
)

func TestRegistryCacheRefs(t *testing.T) {
	const base = "127.0.0.1:5000/fixtures/debian-python:bookworm"
	spec := func(extra string) string {
		return "name: app\nregistry: ghcr.io/my-org\nbase_image: " + base + "\napt_packages: [git, jq]\npackages: [a==1]\n" + extra
	}
	family := regexp.MustCompile(`^ghcr\.io/my-org/ispec-cache:family-[0-9a-f]{32}$`)

	img := loadSpec(t, spec(""), nil)
	refs, err := RegistryCacheRefs(img, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if refs.Repo != "ghcr.io/my-org/app:ispec-cache" {
		t.Errorf("repo ref = %q", refs.Repo)
	}
	if !family.MatchString(refs.Family) {
		t.Errorf("family ref = %q", refs.Family)
	}
	if got := refs.Refs(); len(got) != 2 || got[0] != refs.Repo || got[1] != refs.Family {
		t.Errorf("Refs() = %q", got)
	}

	t.Run("same family", func(t *testing.T) {
		// Other pip packages, env, commands, name or apt order: same family.
		for _, doc := range []string{
			spec("env: {A: b}\n"),
			strings.Replace(spec(""), "packages: [a==1]", "packages: [a==2, b]", 1),
			strings.Replace(spec(""), "[git, jq]", "[jq, git]", 1),
			strings.Replace(spec("commands: [\"echo hi\"]\n"), "name: app", "name: other", 1),
		} {
			r, err := RegistryCacheRefs(loadSpec(t, doc, nil), "", "")
			if err != nil {
				t.Fatal(err)
			}
			if r.Family != refs.Family {
				t.Errorf("family of\n%s= %q, want %q", doc, r.Family, refs.Family)
			}
		}
	})
	t.Run("other family", func(t *testing.T) {
		for what, doc := range map[string]string{
			"apt set":  strings.Replace(spec(""), "[git, jq]", "[git]", 1),
			"no apt":   strings.Replace(spec(""), "apt_packages: [git, jq]\n", "", 1),
			"base":     strings.Replace(spec(""), "bookworm", "trixie", 1),
			"platform": spec("platform: [linux/arm64]\n"),
			"both":     spec("platform: [linux/amd64, linux/arm64]\n"),
		} {
			r, err := RegistryCacheRefs(loadSpec(t, doc, nil), "", "")
			if err != nil {
				t.Fatal(err)
			}
			if r.Family == refs.Family || !family.MatchString(r.Family) {
				t.Errorf("%s changed: family %q (was %q)", what, r.Family, refs.Family)
			}
			if r.Repo != refs.Repo {
				t.Errorf("%s changed the repo ref: %q", what, r.Repo)
			}
		}
		r, _ := RegistryCacheRefs(img, "ghcr.io/my-org/parent@sha256:"+strings.Repeat("a", 64), "")
		if r.Family == refs.Family {
			t.Error("a base override (a nested spec's parent) left the family unchanged")
		}
	})
	t.Run("cache registry", func(t *testing.T) {
		for _, reg := range []string{"cache.lan:5000/ci", "cache.lan:5000/ci/"} {
			r, err := RegistryCacheRefs(img, "", reg)
			if err != nil {
				t.Fatal(err)
			}
			if r.Repo != "cache.lan:5000/ci/my-org/app:ispec-cache" {
				t.Errorf("%s: repo ref = %q", reg, r.Repo)
			}
			if want := "cache.lan:5000/ci/ispec-cache:" + strings.SplitN(refs.Family, ":", 2)[1]; r.Family != want {
				t.Errorf("%s: family ref = %q, want %q", reg, r.Family, want)
			}
		}
	})
	t.Run("registry without path", func(t *testing.T) {
		r, err := RegistryCacheRefs(loadSpec(t, strings.Replace(spec(""), "ghcr.io/my-org", "127.0.0.1:5000", 1), nil), "", "")
		if err != nil {
			t.Fatal(err)
		}
		if r.Repo != "127.0.0.1:5000/app:ispec-cache" || !strings.HasPrefix(r.Family, "127.0.0.1:5000/ispec-cache:family-") {
			t.Errorf("refs = %+v", r)
		}
	})
	t.Run("no registry", func(t *testing.T) {
		noReg := loadSpec(t, strings.Replace(spec(""), "registry: ghcr.io/my-org\n", "", 1), nil)
		r, err := RegistryCacheRefs(noReg, "", "")
		if err != nil || len(r.Refs()) != 0 {
			t.Errorf("no registry: %+v, %v; want no refs", r, err)
		}
		r, err = RegistryCacheRefs(noReg, "", "cache.lan/ci")
		if err != nil || r.Repo != "cache.lan/ci/app:ispec-cache" {
			t.Errorf("no registry, a cache registry: %+v, %v", r, err)
		}
	})
	t.Run("bad cache registry", func(t *testing.T) {
		for _, reg := range []string{"https://cache.lan", "Cache.Lan/UPPER", "cache.lan/a b", "cache.lan//x"} {
			if r, err := RegistryCacheRefs(img, "", reg); err == nil {
				t.Errorf("cache registry %q accepted: %+v", reg, r)
			}
		}
	})
}

func TestCacheEntries(t *testing.T) {
	refs := []string{"r/a:ispec-cache", "r/ispec-cache:family-1"}
	exp := cacheExports(refs)
	if len(exp) != 2 {
		t.Fatalf("exports = %+v", exp)
	}
	for i, e := range exp {
		want := map[string]string{"ref": refs[i], "mode": "max", "oci-mediatypes": "true", "image-manifest": "true", "ignore-error": "true"}
		if e.Type != "registry" || len(e.Attrs) != len(want) {
			t.Errorf("export %d = %+v", i, e)
		}
		for k, v := range want {
			if e.Attrs[k] != v {
				t.Errorf("export %d: %s = %q, want %q", i, k, e.Attrs[k], v)
			}
		}
	}
	imp := cacheImports(refs)
	if len(imp) != 2 || imp[1].Type != "registry" || imp[1].Attrs["ref"] != refs[1] || len(imp[1].Attrs) != 1 {
		t.Errorf("imports = %+v", imp)
	}
	if cacheExports(nil) != nil || cacheImports(nil) != nil {
		t.Error("no refs should give no entries")
	}
}

func TestCacheWarnings(t *testing.T) {
	status := func(vs ...*client.Vertex) *client.SolveStatus { return &client.SolveStatus{Vertexes: vs} }
	v := func(d, name, err string) *client.Vertex {
		return &client.Vertex{Digest: digest.FromString(d), Name: name, Error: err}
	}
	exports := []string{"r/a:ispec-cache", "r/ispec-cache:family-1"}

	tr := newTracker()
	tr.add(status(v("1", "[ispec] pip install a", ""), v("2", cacheImportVertexPrefix+"r/a:ispec-cache", "r/a:ispec-cache: not found")))
	if w := tr.cacheWarnings(exports, exports); w != nil {
		t.Errorf("a missing cache ref warned: %q", w)
	}

	tr.add(status(v("3", cacheExportVertexName, "unexpected status from PUT request: 403 Forbidden"),
		v("4", cacheExportVertexName, "unexpected status from PUT request: 403 Forbidden")))
	tr.add(status(v("5", cacheImportVertexPrefix+"r/ispec-cache:family-1", "failed to authorize: 401 Unauthorized")))
	w := tr.cacheWarnings(exports, exports)
	if len(w) != 1 {
		t.Fatalf("warnings = %q, want one", w)
	}
	for _, want := range []string{"not written to r/a:ispec-cache, r/ispec-cache:family-1: unexpected status from PUT request: 403 Forbidden",
		"not read from r/ispec-cache:family-1: failed to authorize: 401 Unauthorized", "--no-registry-cache"} {
		if !strings.Contains(w[0], want) {
			t.Errorf("warning %q lacks %q", w[0], want)
		}
	}
	if strings.Count(w[0], "403 Forbidden") != 1 {
		t.Errorf("warning %q repeats the same error", w[0])
	}
	if tr.failed() != nil {
		t.Errorf("a cache vertex's error was taken for the build's failure: %+v", tr.failed())
	}
}

func TestWithRegistryCache(t *testing.T) {
	img := loadSpec(t, "name: app\nregistry: ghcr.io/my-org\nbase_image: "+testBase+"\n", nil)
	out := &Output{Type: OutputOCI, Path: "img.tar"}
	for _, tc := range []struct {
		mode   CacheMode
		output *Output
		want   bool
	}{
		{CacheAuto, nil, true}, {CacheAuto, out, false},
		{CacheOn, nil, true}, {CacheOn, out, true},
		{CacheOff, nil, false}, {CacheOff, out, false},
	} {
		opts, err := WithRegistryCache(BuildOptions{Output: tc.output, NoCache: true}, img, tc.mode, "")
		if err != nil {
			t.Fatal(err)
		}
		got := len(opts.CacheImports) == 2 && len(opts.CacheExports) == 2
		if got != tc.want || (!tc.want && (opts.CacheImports != nil || opts.CacheExports != nil)) {
			t.Errorf("mode %d, output %v: imports %q exports %q", tc.mode, tc.output != nil, opts.CacheImports, opts.CacheExports)
		}
		if !opts.NoCache || opts.Output != tc.output {
			t.Errorf("mode %d: other options changed: %+v", tc.mode, opts)
		}
	}
	opts, err := WithRegistryCache(BuildOptions{}, img, CacheAuto, "cache.lan/ci")
	if err != nil || opts.CacheExports[0] != "cache.lan/ci/my-org/app:ispec-cache" {
		t.Errorf("cache registry: %q, %v", opts.CacheExports, err)
	}
	if _, err := WithRegistryCache(BuildOptions{}, img, CacheAuto, "https://cache.lan"); err == nil {
		t.Error("a cache registry with a scheme was accepted")
	}
	if opts, err := WithRegistryCache(BuildOptions{}, img, CacheOff, "https://cache.lan"); err != nil || opts.CacheImports != nil {
		t.Errorf("off: %+v, %v", opts, err)
	}
}

// TestFamilyIsKeyedByTheResolvedBase: a build keys the family reference
// by the digest its base tag resolved to, so that a tag pushed again
// (other blobs, the same files or not) starts another family; the
// repository's reference and other imports stay as they were.
func TestFamilyIsKeyedByTheResolvedBase(t *testing.T) {
	img := loadSpec(t, "name: app\nregistry: ghcr.io/my-org\nbase_image: "+testBase+"\npackages: [a==1]\n", nil)
	opts, err := WithRegistryCache(BuildOptions{CacheImports: nil}, img, CacheOn, "")
	if err != nil {
		t.Fatal(err)
	}
	refs, _ := RegistryCacheRefs(img, "", "")
	repo := "127.0.0.1:5000/fixtures/debian-python"
	pinsOf := func(hex string) map[string]string {
		return map[string]string{"linux/amd64": pinBase(testBase, digest.Digest("sha256:"+strings.Repeat(hex, 64)))}
	}
	first, again, second := opts.pinnedFamily(img, pinsOf("1")), opts.pinnedFamily(img, pinsOf("1")), opts.pinnedFamily(img, pinsOf("2"))
	for _, o := range []BuildOptions{first, second} {
		if len(o.CacheImports) != 2 || o.CacheImports[0] != refs.Repo || o.CacheExports[0] != refs.Repo {
			t.Errorf("repository reference changed: imports %q exports %q", o.CacheImports, o.CacheExports)
		}
		if o.CacheImports[1] == refs.Family || o.CacheImports[1] != o.CacheExports[1] || !strings.HasPrefix(o.CacheImports[1], "ghcr.io/my-org/ispec-cache:family-") {
			t.Errorf("family %q (imports), %q (exports); want one keyed by the digest, not %q", o.CacheImports[1], o.CacheExports[1], refs.Family)
		}
	}
	if first.CacheImports[1] != again.CacheImports[1] {
		t.Errorf("one digest, two families: %q and %q", first.CacheImports[1], again.CacheImports[1])
	}
	if first.CacheImports[1] == second.CacheImports[1] {
		t.Errorf("a re-pushed base (other digest) kept the family %q", first.CacheImports[1])
	}
	// The digest is the one a lock pins: a locked spec on that digest is
	// in the same family.
	if got := pinBase(testBase, "sha256:"+digest.Digest(strings.Repeat("1", 64))); got != repo+"@sha256:"+strings.Repeat("1", 64) {
		t.Errorf("pinBase = %q", got)
	}
	if want := familyRef("ghcr.io/my-org", cacheFamily(img, repo+"@sha256:"+strings.Repeat("1", 64))); first.CacheImports[1] != want {
		t.Errorf("family %q, want %q (a base pinned to that digest)", first.CacheImports[1], want)
	}
	// Without a family (no registry cache) nothing changes; a base that
	// names a digest is kept.
	if o := (BuildOptions{}).pinnedFamily(img, pinsOf("1")); o.CacheImports != nil || o.CacheExports != nil {
		t.Errorf("no cache: %+v", o)
	}
	if got := pinBase(repo+"@sha256:"+strings.Repeat("3", 64), "sha256:"+digest.Digest(strings.Repeat("4", 64))); got != repo+"@sha256:"+strings.Repeat("3", 64) {
		t.Errorf("a digest reference was pinned again: %q", got)
	}
}

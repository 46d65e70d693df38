package builder

import (
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ispec-dev/ispec/internal/testenv"
)

// TestE2EPushThenCache: a build that pushes its image and exports its
// registry cache next to it writes each blob to the image's repository
// once, and the cache after the image: the two never write the same blob
// to one repository at once (a distribution registry then refuses the
// image's manifest for a blob it rewrites meanwhile).
func TestE2EPushThenCache(t *testing.T) {
	env := loadDevEnv(t)
	b := newE2EBuilder(t, env)
	ns := fmt.Sprintf("%s/e2e-push-cache-%d", env.Registry, time.Now().UnixNano())
	parentDoc := fmt.Sprintf("name: parent\nregistry: %s\nbase_image: %s\ncommands: [\"echo parent > /parent.txt\"]\n", ns, env.BaseBusybox)
	parent := loadSpec(t, parentDoc, nil)
	refs, err := RegistryCacheRefs(parent, "", "")
	if err != nil {
		t.Fatal(err)
	}
	pres, _, err := build(t, b, parent, cacheOpts(refs))
	if err != nil {
		t.Fatalf("building the parent: %v", err)
	}
	// A child on the parent: its image and its cache share the parent's
	// layers, mounted from the parent's repository.
	child := loadSpec(t, fmt.Sprintf("name: child\nregistry: %s\nbase_image: %s\ncommands: [\"cat /parent.txt > /child.txt\"]\n", ns, env.BaseBusybox), nil)
	base := pres.Ref + "@" + pres.Digest
	crefs, err := RegistryCacheRefs(child, base, "")
	if err != nil {
		t.Fatal(err)
	}
	opts := cacheOpts(crefs)
	opts.Base = base
	res, _, err := build(t, b, child, opts)
	if err != nil {
		t.Fatalf("building the child: %v", err)
	}
	if len(res.Warnings) != 0 {
		t.Errorf("warnings: %q", res.Warnings)
	}
	for _, img := range []*struct{ ref, repo string }{{pres.Ref, parent.Identity.Repository}, {res.Ref, child.Identity.Repository}} {
		seen := map[string]int{}
		for _, w := range testenv.BlobWrites(t, env.RegistryLog, img.repo) {
			seen[w.Digest]++
		}
		for d, n := range seen {
			if n > 1 {
				t.Errorf("%s: blob %s written %d times to the repository", img.ref, d, n)
			}
		}
		var order []string
		puts, err := testenv.ManifestPuts(env.RegistryLog)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range puts {
			if p.Repo == img.repo {
				order = append(order, p.Reference)
			}
		}
		if len(order) != 2 || order[1] != CacheTag {
			t.Errorf("%s: manifests put in the order %v, want the image's tag and then %s", img.ref, order, CacheTag)
		}
	}
	if testenv.Pull(t, res.Ref+"@"+res.Digest) == nil {
		t.Fatal("the child was not pushed")
	}
}

// TestE2EPushRetriedOnBlobUnknown: a registry that refuses the image's
// manifest once for a blob it does not know gets the image pushed again,
// and the progress says so; the build itself does not run again.
func TestE2EPushRetriedOnBlobUnknown(t *testing.T) {
	env := loadDevEnv(t)
	b := newE2EBuilder(t, env)
	var refused atomic.Int32
	reg := refusingProxyWith(t, env, func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPut || !strings.Contains(r.URL.Path, "/manifests/") || strings.HasSuffix(r.URL.Path, "/"+CacheTag) {
			return false
		}
		if refused.Add(1) > 1 {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"errors":[{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry","detail":"sha256:0000000000000000000000000000000000000000000000000000000000000000"}]}`)
		return true
	})
	doc := fmt.Sprintf("name: retried\nregistry: %s/e2e-push-retry-%d\nbase_image: %s\ncommands: [\"echo retried > /r.txt\"]\n", reg, time.Now().UnixNano(), env.BaseBusybox)
	img := loadSpec(t, doc, nil)
	res, events, err := build(t, b, img)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	if n := refused.Load(); n < 2 {
		t.Fatalf("%d manifest PUTs reached the registry, want the refused one and another", n)
	}
	var notice string
	runs := 0
	for _, s := range events {
		for _, v := range s.Vertexes {
			if strings.HasPrefix(v.Name, "[ispec] commands[0]") && v.Completed != nil && !v.Cached {
				runs++
			}
		}
		for _, l := range s.Logs {
			for _, v := range s.Vertexes {
				if v.Digest == l.Vertex && v.Name == PushRetryStep {
					notice += string(l.Data)
				}
			}
		}
	}
	if !strings.Contains(notice, "blob unknown") || !strings.Contains(notice, "attempt 2 of 3") {
		t.Errorf("the progress does not say the push is tried again: %q", notice)
	}
	if runs > 1 {
		t.Errorf("the command ran %d times: a second push must not build again", runs)
	}
	im := testenv.Pull(t, strings.Replace(res.Ref, reg, env.Registry, 1))
	if d, _ := im.Digest(); d.String() != res.Digest {
		t.Errorf("pushed %s, result %s", d, res.Digest)
	}
}

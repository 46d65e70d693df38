package builder

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ispec-dev/ispec/internal/testenv"
	"github.com/ispec-dev/ispec/spec"
)

// importShape is a graph shape of the recipe, the spec lines that give it
// and files its image must hold.
type importShape struct {
	name  string
	spec  string
	files []string
}

// importShapes are the recipe's graph shapes: branches merged on the base
// or not, copied layers merged on top or not, apt beside the venv.
func importShapes(indexURL string) []importShape {
	pkg := "pip_index: " + indexURL + "\npackages: [ispec-demo-a==1.0.0]\n"
	return []importShape{
		{"venv and pip", pkg, []string{"/opt/venv/bin/python"}},
		{"venv, pip and source_root", pkg + "source_root: .\nworkdir: /app\n", []string{"/opt/venv/bin/python", "/app/app.py"}},
		{"apt beside venv, pip, command and copies", pkg + "apt_packages: [jq]\ncopy: [conf.txt]\nsource_root: .\nworkdir: /app\ncommands: [\"python -c 'import ispec_demo_a' && jq --version > /jq.txt\"]\n",
			[]string{"/opt/venv/bin/python", "/app/conf.txt", "/app/app.py", "/jq.txt"}},
		{"copies and a command, no Python", "copy: [conf.txt]\ncommands: [\"echo hi > /hi.txt\"]\n", []string{"/root/conf.txt", "/hi.txt"}},
	}
}

// importFiles are the files of every shape's spec folder.
var importFiles = map[string]string{"app.py": "print('app')\n", "conf.txt": "setting=1\n"}

// cacheDaemon starts a daemon of the test's own, which it may prune.
func cacheDaemon(t *testing.T, env *testenv.Env) (*Builder, *testenv.Buildkitd) {
	t.Helper()
	bk := env.StartBuildkitd(t)
	b, err := New(context.Background(), Options{Addr: bk.Host, Version: "e2e"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b, bk
}

// buildFromCache builds img with its registry cache on b, after the
// daemon's cache was emptied, and wants the first step that runs a
// command (apt, venv, or the first command) taken from the registry cache
// and files in the image.
func buildFromCache(t *testing.T, b *Builder, img *spec.Image, opts BuildOptions, files []string) *Result {
	t.Helper()
	res, events, err := build(t, b, img, opts)
	if err != nil {
		t.Fatalf("building from the registry cache: %v", err)
	}
	steps, err := Steps(img, Input{Platform: amd64})
	if err != nil {
		t.Fatal(err)
	}
	ran := ranSteps(events)
	checked := false
	for _, s := range steps {
		if s.place == onTop {
			continue
		}
		r, seen := ran[s.Name]
		if !seen {
			// Not in this build's graph: a base that already has the
			// image's user needs no user step (Steps was not given the
			// base's accounts).
			continue
		}
		if r {
			t.Errorf("step %q ran again instead of coming from the registry cache", s.Name)
		}
		checked = true
		break
	}
	if !checked {
		t.Errorf("no step of the recipe was seen in the build's progress")
	}
	im := testenv.Pull(t, res.Ref+"@"+res.Digest)
	for _, f := range files {
		if _, ok := testenv.ImageFile(t, im, strings.TrimPrefix(f, "/")); !ok {
			t.Errorf("the image lacks %s", f)
		}
	}
	return res
}

// TestE2ECacheImportShapes: for each graph shape, a build exports its
// registry cache, the daemon's cache is emptied (a new CI runner, a new
// pool pod), and the build again takes every step from the registry
// cache and gives the same image.
func TestE2ECacheImportShapes(t *testing.T) {
	env := loadDevEnv(t)
	b, bk := cacheDaemon(t, env)
	ns := fmt.Sprintf("e2e-cache-shapes-%d", time.Now().UnixNano())
	base := uniqueBase(t, env, ns)
	for i, sh := range importShapes(env.IndexURL) {
		t.Run(sh.name, func(t *testing.T) {
			doc := fmt.Sprintf("name: shape%d\nregistry: %s/%s\nbase_image: %s\n%s", i, env.Registry, ns, base, sh.spec)
			img := loadSpecIn(t, t.TempDir(), doc, importFiles)
			refs, err := RegistryCacheRefs(img, "", "")
			if err != nil {
				t.Fatal(err)
			}
			first, _, err := build(t, b, img, cacheOpts(refs))
			if err != nil {
				t.Fatalf("first build: %v", err)
			}
			env.PruneAll(t, bk.Host)
			res := buildFromCache(t, b, img, cacheOpts(refs), sh.files)
			if res.Digest != first.Digest {
				t.Errorf("built from the registry cache: %s, first: %s", res.Digest, first.Digest)
			}
		})
	}
}

// TestE2ECacheImportNested: a nested spec's build exports its cache, the
// daemon's cache is emptied, and it builds again from the registry cache
// on its parent.
func TestE2ECacheImportNested(t *testing.T) {
	env := loadDevEnv(t)
	b, bk := cacheDaemon(t, env)
	ns := fmt.Sprintf("%s/e2e-cache-nested-%d", env.Registry, time.Now().UnixNano())
	pkg := "pip_index: " + env.IndexURL + "\n"
	parent := loadSpecIn(t, t.TempDir(), fmt.Sprintf("name: parent\nregistry: %s\nbase_image: %s\n%spackages: [ispec-demo-a==1.0.0]\nsource_root: .\n", ns, env.BasePython, pkg), importFiles)
	prefs, _ := RegistryCacheRefs(parent, "", "")
	pres, _, err := build(t, b, parent, cacheOpts(prefs))
	if err != nil {
		t.Fatalf("parent: %v", err)
	}
	child := loadSpecIn(t, t.TempDir(), fmt.Sprintf("name: child\nregistry: %s\nbase_image: %s\n%spackages: [ispec-demo-b==2.0.0]\ncopy: [conf.txt]\n", ns, env.BasePython, pkg), importFiles)
	parentRef := pres.Ref + "@" + pres.Digest
	crefs, _ := RegistryCacheRefs(child, parentRef, "")
	opts := cacheOpts(crefs)
	opts.Base = parentRef
	first, _, err := build(t, b, child, opts)
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	env.PruneAll(t, bk.Host)
	res := buildFromCache(t, b, child, opts, []string{"/opt/venv/bin/python", "/root/app.py", "/root/conf.txt"})
	if res.Digest != first.Digest {
		t.Errorf("built from the registry cache: %s, first: %s", res.Digest, first.Digest)
	}
}

// TestE2ECacheImportRepushedBase: the base tag is pushed again with the
// same files under other blobs (recompressed, or with other timestamps)
// after other specs of the family exported their cache on it; a build of
// the spec on a daemon with an empty cache (a new runner) still works,
// and its venv is in its image. The family is keyed by the digest the
// base resolved to: the builds on the new push write a new family and
// leave the first push's as it was.
func TestE2ECacheImportRepushedBase(t *testing.T) {
	env := loadDevEnv(t)
	for _, how := range []struct {
		name string
		how  testenv.Repush
	}{{"recompressed", testenv.Recompress}, {"retimestamped", testenv.Retimestamp}} {
		t.Run(how.name, func(t *testing.T) {
			b, bk := cacheDaemon(t, env)
			ns := fmt.Sprintf("e2e-cache-repush-%d", time.Now().UnixNano())
			base := uniqueBase(t, env, ns)
			mk := func(name, extra string) (*spec.Image, BuildOptions) {
				doc := fmt.Sprintf("name: %s\nregistry: %s/%s\nbase_image: %s\npip_index: %s\n%s", name, env.Registry, ns, base, env.IndexURL, extra)
				img := loadSpecIn(t, t.TempDir(), doc, importFiles)
				// As ispec builds: the family keyed by the base's digest.
				opts, err := WithRegistryCache(BuildOptions{}, img, CacheOn, "")
				if err != nil {
					t.Fatal(err)
				}
				return img, opts
			}
			app, appOpts := mk("app", "source_root: .\npackages: [ispec-demo-a==1.0.0]\n")
			other, otherOpts := mk("other", "packages: [ispec-demo-a==1.0.0]\ncopy: [conf.txt]\n")
			third, thirdOpts := mk("third", "source_root: .\npackages: [ispec-demo-a==1.1.0]\n")
			for _, s := range []struct {
				img  *spec.Image
				opts BuildOptions
			}{{app, appOpts}, {other, otherOpts}} {
				if _, _, err := build(t, b, s.img, s.opts); err != nil {
					t.Fatalf("building %s on the first push of the base: %v", s.img.Identity.Ref, err)
				}
			}
			old, now := testenv.RepushImage(t, base, how.how)
			t.Logf("base %s re-pushed: %s -> %s", base, old, now)
			familyOn := func(d string) string {
				return familyRef(familyPrefix(appOpts.family), cacheFamily(app, spec.Repository(base)+"@"+d))
			}
			oldFamily, newFamily := familyOn(old.String()), familyOn(now.String())
			before := manifestDigest(t, oldFamily)
			if before == "" {
				t.Fatalf("no family %s written on the first push of the base", oldFamily)
			}
			// The family's cache is written again on the new push, by
			// other specs, on the same daemon.
			for _, s := range []struct {
				img  *spec.Image
				opts BuildOptions
			}{{other, otherOpts}, {third, thirdOpts}} {
				if _, _, err := build(t, b, s.img, s.opts); err != nil {
					t.Fatalf("building %s on the new push of the base: %v", s.img.Identity.Ref, err)
				}
			}
			if got := manifestDigest(t, oldFamily); got != before {
				t.Errorf("the first push's family %s was written again on the new push (%s, was %s)", oldFamily, got, before)
			}
			if manifestDigest(t, newFamily) == "" {
				t.Errorf("no family %s written on the new push of the base", newFamily)
			}
			// The spec exports its cache on the new push, then builds on
			// a new runner (as --force does: its image exists) from that
			// cache.
			if _, _, err := build(t, b, app, appOpts); err != nil {
				t.Fatalf("building on the new push of the base: %v", err)
			}
			env.PruneAll(t, bk.Host)
			res, _, err := build(t, b, app, appOpts)
			if err != nil {
				t.Fatalf("building again after the base was re-pushed and the daemon pruned: %v", err)
			}
			im := testenv.Pull(t, res.Ref+"@"+res.Digest)
			if _, ok := testenv.ImageFile(t, im, "opt/venv/bin/python"); !ok {
				t.Errorf("the image lacks /opt/venv/bin/python")
			}
			// And with the registry cache off, on the same daemon: no bad
			// record was left behind.
			if _, _, err := build(t, b, app, BuildOptions{}); err != nil {
				t.Fatalf("building without the registry cache after that: %v", err)
			}
		})
	}
}

// manifestDigest returns the digest ref's tag names in its (plain HTTP)
// registry, "" when it does not exist.
func manifestDigest(t *testing.T, ref string) string {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Head(r)
	if err != nil {
		return ""
	}
	return d.Digest.String()
}

package builder

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/ispec-dev/ispec/builder/progress"
	"github.com/ispec-dev/ispec/internal/imagediff"
	"github.com/ispec-dev/ispec/internal/testenv"
)

// uniqueBase pushes the Python base fixture with one more layer holding a
// nonce to a new repository, so that no step built on it is in BuildKit's
// cache yet: which steps run is then up to the test alone.
func uniqueBase(t *testing.T, env *testenv.Env, repo string) string {
	t.Helper()
	base := testenv.Pull(t, env.BasePython)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	nonce := fmt.Sprintf("%d\n", time.Now().UnixNano())
	if err := tw.WriteHeader(&tar.Header{Name: "ispec-e2e-nonce", Mode: 0o644, Size: int64(len(nonce)), ModTime: time.Unix(0, 0)}); err != nil {
		t.Fatal(err)
	}
	io.WriteString(tw, nonce)
	tw.Close()
	dt := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(dt)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(base, l)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(env.Registry+"/"+repo+"/base:nonce", name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("pushing the base: %v", err)
	}
	return ref.String()
}

// ranSteps returns, per ispec step seen in a build's progress, whether it
// ran (true) or came from BuildKit's cache (false).
func ranSteps(events []*progress.Status) map[string]bool {
	last := map[string]*progress.Vertex{}
	for _, s := range events {
		for _, v := range s.Vertexes {
			if strings.HasPrefix(v.Name, "[ispec]") && v.Completed != nil {
				last[v.Name] = v
			}
		}
	}
	out := map[string]bool{}
	for n, v := range last {
		out[n] = !v.Cached
	}
	return out
}

// checkRan wants exactly the steps of ran to have run among steps.
func checkRan(t *testing.T, events []*progress.Status, steps []string, ran ...string) {
	t.Helper()
	got := ranSteps(events)
	for _, s := range steps {
		r, seen := got[s]
		want := false
		for _, n := range ran {
			want = want || n == s
		}
		switch {
		case !seen && want:
			t.Errorf("step %q: not in the progress, want it run", s)
		case seen && r != want:
			t.Errorf("step %q ran: %v, want %v", s, r, want)
		}
	}
}

// TestE2EMergedGraph builds one spec with the merged graph and with the
// linear one and wants the same files, config and history; then changes
// only the apt set, and only a copied file, and wants only the steps that
// depend on them to run again.
func TestE2EMergedGraph(t *testing.T) {
	env := loadDevEnv(t)
	b := newE2EBuilder(t, env)
	repo := fmt.Sprintf("e2e-builder-merge-%d", time.Now().UnixNano())
	base := uniqueBase(t, env, repo)
	dir := t.TempDir()
	cmds := []string{"mkdir -p /app/data && echo built > /app/data/built.txt", "python -c 'import ispec_demo_a, ispec_demo_b' && jq --version > /jq.txt"}
	doc, files := e2eSpec(env, repo, "1.0.0", cmds)
	doc = strings.Replace(doc, "base_image: "+env.BasePython, "base_image: "+base, 1)
	img := loadSpecIn(t, dir, doc, files)
	steps, err := Steps(img, Input{Platform: amd64, Base: base, Accounts: debianAccounts()})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range steps {
		names = append(names, s.Name)
	}

	merged, events, err := build(t, b, img)
	if err != nil {
		t.Fatalf("merged build: %v", err)
	}
	checkRan(t, events, names, names...)
	for _, s := range events {
		for _, v := range s.Vertexes {
			if v.Name == LinearFallbackStep {
				t.Errorf("the build fell back to the linear graph on a daemon that merges")
			}
		}
	}
	linear, _, err := build(t, b, img, BuildOptions{Linear: true, Ref: env.Registry + "/" + repo + "/linear:" + img.Identity.Tag})
	if err != nil {
		t.Fatalf("linear build: %v", err)
	}
	mi := testenv.Pull(t, merged.Ref+"@"+merged.Digest)
	li := testenv.Pull(t, linear.Ref+"@"+linear.Digest)
	t.Run("same image as the linear graph", func(t *testing.T) {
		if d, err := imagediff.CompareFiles(li, mi); err != nil || d != nil {
			t.Errorf("linear and merged images differ: %v (%v)", d, err)
		}
		ml, _ := mi.Layers()
		ll, _ := li.Layers()
		if len(ml) != len(ll) {
			t.Errorf("merged image has %d layers, linear %d", len(ml), len(ll))
		}
		mc, err := mi.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		lc, err := li.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(mc.Config, lc.Config) {
			t.Errorf("configs differ:\nmerged %+v\nlinear %+v", mc.Config, lc.Config)
		}
		if !reflect.DeepEqual(mc.History, lc.History) {
			t.Errorf("histories differ:\nmerged %+v\nlinear %+v", mc.History, lc.History)
		}
		var withLayers int
		for _, h := range mc.History {
			if !h.EmptyLayer {
				withLayers++
			}
		}
		if withLayers != len(ml) {
			t.Errorf("%d history entries with layers, %d layers", withLayers, len(ml))
		}
		// Each step's files are in its own layer, named by its history entry.
		fs := layerFiles(t, mi)
		top := len(ml) - 1
		for p, layer := range map[string]int{"app/conf.txt": top, "app/bin/run.sh": top - 1, "jq.txt": top - 2, "app/data/built.txt": top - 3, "usr/bin/jq": top - 6} {
			if f, ok := fs[p]; !ok || f.layer != layer {
				t.Errorf("%s in layer %d (found %v), want %d", p, f.layer, ok, layer)
			}
		}
	})

	t.Run("apt change runs apt, pip and commands only", func(t *testing.T) {
		doc2 := strings.Replace(doc, "apt_packages: [jq]", "apt_packages: [jq, tree]", 1)
		img2 := loadSpecIn(t, dir, doc2, files)
		steps2, _ := Steps(img2, Input{Platform: amd64, Base: base, Accounts: debianAccounts()})
		var names2 []string
		for _, s := range steps2 {
			names2 = append(names2, s.Name)
		}
		res, events, err := build(t, b, img2)
		if err != nil {
			t.Fatalf("Build: %v", err)
		}
		// names2[0] is the user, names2[2] the venv.
		checkRan(t, events, names2, names2[1], names2[3], names2[4], names2[5])
		if _, ok := layerFiles(t, testenv.Pull(t, res.Ref))["usr/bin/tree"]; !ok {
			t.Error("tree is not in the image")
		}
	})

	t.Run("copy change runs the copy only", func(t *testing.T) {
		files2 := map[string]string{"conf.txt": "setting=2\n"}
		if err := os.WriteFile(filepath.Join(dir, "conf.txt"), []byte(files2["conf.txt"]), 0o644); err != nil {
			t.Fatal(err)
		}
		img3 := loadSpecIn(t, dir, doc, nil)
		res, events, err := build(t, b, img3)
		if err != nil {
			t.Fatalf("Build: %v", err)
		}
		checkRan(t, events, names, names[len(names)-1])
		got, _ := testenv.ImageFile(t, testenv.Pull(t, res.Ref), "app/conf.txt")
		if got != files2["conf.txt"] {
			t.Errorf("app/conf.txt = %q", got)
		}
		was, now := layerDigests(t, mi), layerDigests(t, testenv.Pull(t, res.Ref))
		if len(was) != len(now) {
			t.Fatalf("%d layers, %d before", len(now), len(was))
		}
		for i := range was {
			if changed := was[i] != now[i]; changed != (i == len(was)-1) {
				t.Errorf("layer %d of %d changed: %v; only the last should", i, len(was), changed)
			}
		}
	})
}

// layerDigests lists an image's layer digests.
func layerDigests(t *testing.T, im v1.Image) []v1.Hash {
	t.Helper()
	ls, err := im.Layers()
	if err != nil {
		t.Fatal(err)
	}
	var out []v1.Hash
	for _, l := range ls {
		d, err := l.Digest()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

// TestE2EExportTime measures the export (layers, manifest, push) of one
// image built with the merged and the linear graph, steps cached, to new
// repositories, alternating; it fails when the merged graph's export takes
// more than half again as long (merged layers re-compressed or copied).
// In CI it runs once each and only reports the times (a timed assertion on
// a shared machine would be noise); ISPEC_BENCH_EXPORT=N runs it N times
// each and holds the bound (scripts/bench-build.sh).
func TestE2EExportTime(t *testing.T) {
	runs, _ := strconv.Atoi(os.Getenv("ISPEC_BENCH_EXPORT"))
	measure := runs > 0
	if !measure {
		runs = 1
	}
	env := loadDevEnv(t)
	b := newE2EBuilder(t, env)
	repo := fmt.Sprintf("e2e-builder-export-%d", time.Now().UnixNano())
	doc, files := e2eSpec(env, repo, "1.0.0", []string{"echo built > /built.txt"})
	img := loadSpec(t, doc, files)
	export := func(linear bool, i int) time.Duration {
		ref := fmt.Sprintf("%s/%s/run-%v-%d:%s", env.Registry, repo, linear, i, img.Identity.Tag)
		_, events, err := build(t, b, img, BuildOptions{Linear: linear, Ref: ref})
		if err != nil {
			t.Fatalf("Build (linear %v): %v", linear, err)
		}
		var d time.Duration
		for _, s := range events {
			for _, v := range s.Vertexes {
				if strings.HasPrefix(v.Name, "exporting to image") && v.Started != nil && v.Completed != nil {
					d = v.Completed.Sub(*v.Started)
				}
			}
		}
		if d == 0 {
			t.Fatal("no export in the progress")
		}
		return d
	}
	export(false, -1) // warm both graphs' steps
	export(true, -1)
	var merged, linear []time.Duration
	for i := 0; i < runs; i++ {
		merged = append(merged, export(false, i))
		linear = append(linear, export(true, i))
	}
	median := func(ds []time.Duration) time.Duration {
		slices.Sort(ds)
		return ds[len(ds)/2]
	}
	m, l := median(merged), median(linear)
	t.Logf("export median over %d runs: merged %s, linear %s, ratio %.2f", runs, m, l, float64(m)/float64(l))
	if measure && m > l*3/2 {
		t.Errorf("the merged graph's export (%s) is slower than the linear one's (%s)", m, l)
	}
}

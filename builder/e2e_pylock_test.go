package builder

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/ispec-dev/ispec/internal/pyindex"
	"github.com/ispec-dev/ispec/internal/testenv"
)

// fixtureIndex is the index address the lock fixtures were written
// against; the tests serve them from their own index.
const fixtureIndex = "http://127.0.0.1:5099"

// privateIndex serves the LockDemo wheels from a folder of the test's own
// on 127.0.0.1, so that a test may replace a wheel without touching the
// shared index. It returns the index's address and the folder.
func privateIndex(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	if err := pyindex.WriteLockDemo(dir); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: pyindex.Handler(dir), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return "http://" + ln.Addr().String(), dir
}

// installedDists lists the distributions in the image's virtual
// environment as "name==version", from their .dist-info folders.
func installedDists(t *testing.T, ref string) []string {
	t.Helper()
	re := regexp.MustCompile(`^opt/venv/lib/python3[.0-9]*/site-packages/([^/]+)-([^-/]+)\.dist-info/METADATA$`)
	var out []string
	for p := range layerFiles(t, testenv.Pull(t, ref)) {
		if m := re.FindStringSubmatch(p); m != nil && m[1] != "pip" && m[1] != "setuptools" {
			out = append(out, m[1]+"=="+m[2])
		}
	}
	sort.Strings(out)
	return out
}

// lockSpec is a spec naming a lock fixture, with the fixture's files
// pointed at index.
func lockSpec(t *testing.T, env *testenv.Env, index, dir, lock, extra string) (string, map[string]string) {
	t.Helper()
	files := map[string]string{}
	for k, v := range lockFiles(t, dir) {
		files[k] = strings.ReplaceAll(v, fixtureIndex, index)
	}
	doc := fmt.Sprintf("name: lock\nregistry: %s/e2e-pylock-%d\nbase_image: %s\nrequirements: %s\npip_index: %s/simple\n%s",
		env.Registry, time.Now().UnixNano(), env.BasePython, lock, index, extra)
	return doc, files
}

// TestE2EPythonLockFiles: a uv.lock, a poetry.lock and a pylock.toml, each
// written to its published format, install exactly their default pins on
// linux/amd64 (the x86_64-only package included, the dev group and the
// newer util on the index left out).
func TestE2EPythonLockFiles(t *testing.T) {
	env := loadDevEnv(t)
	b := newE2EBuilder(t, env)
	index, _ := privateIndex(t)
	want := "ispec_lk_amd==1.0.0 ispec_lk_core==1.0.0 ispec_lk_fast==0.5.0 ispec_lk_util==1.0.0"
	for _, c := range []struct{ dir, lock string }{{"uv", "uv.lock"}, {"poetry", "poetry.lock"}, {"pep751", "pylock.toml"}} {
		t.Run(c.lock, func(t *testing.T) {
			doc, files := lockSpec(t, env, index, c.dir, c.lock, "")
			img := loadSpec(t, doc, files)
			res, _, err := build(t, b, img)
			if err != nil {
				t.Fatalf("Build: %v", err)
			}
			if got := strings.Join(installedDists(t, res.Ref), " "); got != want {
				t.Errorf("installed %s, want %s", got, want)
			}
		})
	}
}

// TestE2EPythonLockReplacedArtifact: a locked wheel replaced on the index
// by other bytes under the same file name fails the build, naming the
// package and both hashes; nothing is pushed.
func TestE2EPythonLockReplacedArtifact(t *testing.T) {
	env := loadDevEnv(t)
	b := newE2EBuilder(t, env)
	index, wheels := privateIndex(t)
	doc, files := lockSpec(t, env, index, "uv", "uv.lock", "")
	img := loadSpec(t, doc, files)
	locked := "12aeb373aebbfc9b7aa931646ee32d4993f8e6267d79b7d484d1766f04e04cc4"
	other, err := pyindex.Build(pyindex.Wheel{Name: "ispec-lk-util", Version: "1.0.0", Summary: "replaced"})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(wheels, pyindex.FileName("ispec-lk-util", "1.0.0"))
	if err := os.WriteFile(file, other, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err = build(t, b, img, BuildOptions{NoCache: true})
	var se *StepError
	if !errors.As(err, &se) {
		t.Fatalf("Build = %v, want a failed step", err)
	}
	msg := err.Error()
	t.Logf("the build failed with: %s", msg)
	got := fmt.Sprintf("%x", sha256Sum(other))
	for _, w := range []string{"ispec-lk-util", locked, got} {
		if !strings.Contains(msg, w) {
			t.Errorf("error lacks %s:\n%s", w, msg)
		}
	}
	ref, err := name.ParseReference(img.Identity.Ref)
	if err != nil {
		t.Fatal(err)
	}
	_, err = remote.Head(ref)
	var te *transport.Error
	if !errors.As(err, &te) || te.StatusCode != http.StatusNotFound {
		t.Errorf("HEAD %s after the failed build = %v, want 404: nothing pushed", ref, err)
	}
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

package builder

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/ispec-dev/ispec/pylock"
	"github.com/ispec-dev/ispec/spec"
)

// lockFiles reads a lock fixture of pylock/testdata.
func lockFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	files := map[string]string{}
	root := filepath.Join("..", "pylock", "testdata", dir)
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		data, err := os.ReadFile(filepath.Join(root, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = string(data)
	}
	return files
}

// lockStepOf returns the lock step of a graph and the requirements file
// mounted into it.
func lockStepOf(t *testing.T, img *spec.Image, plat ocispecs.Platform) (*pb.ExecOp, string) {
	t.Helper()
	st, err := Graph(img, Input{Platform: plat, Base: testBase, Accounts: debianAccounts(), Linear: true})
	if err != nil {
		t.Fatalf("Graph: %v", err)
	}
	ops, all := chain(t, st)
	for _, o := range ops {
		if !strings.HasPrefix(o.name, "[ispec] pip install --no-deps --require-hashes") {
			continue
		}
		ex := o.GetExec()
		for _, m := range ex.Mounts {
			if m.Dest != lockDir {
				continue
			}
			src := all[digest.Digest(o.Inputs[m.Input].Digest)]
			mk := src.GetFile().GetActions()[0].GetMkfile()
			if mk == nil || !m.Readonly {
				t.Fatalf("lock mount from %v, want a read-only file the graph makes", src.Op)
			}
			return ex, string(mk.Data)
		}
		t.Fatalf("lock step %q mounts no requirements", o.name)
	}
	return nil, ""
}

// TestLockStepInstallsExactlyThePins: with a Python lock, pip installs
// the platform's pins by URL and sha256 with --no-deps --require-hashes,
// from a file the graph itself holds (no files are sent), and the
// requirements-file step is gone.
func TestLockStepInstallsExactlyThePins(t *testing.T) {
	files := lockFiles(t, "uv")
	img := loadSpec(t, "name: x\nbase_image: "+testBase+"\nrequirements: uv.lock\nplatform: [linux/amd64, linux/arm64]\npip_index: http://127.0.0.1:5099/simple\n", files)
	arm := ocispecs.Platform{OS: "linux", Architecture: "arm64"}
	ex, reqs := lockStepOf(t, img, amd64)
	if ex == nil {
		t.Fatal("no lock step")
	}
	want := []string{"--no-deps", "--require-hashes", "-r", lockDir + "/requirements.txt"}
	if got := ex.Meta.Args[len(ex.Meta.Args)-4:]; !slices.Equal(got, want) {
		t.Errorf("pip args end %q, want %q", got, want)
	}
	if !slices.Contains(ex.Meta.Args, "--index-url") {
		t.Errorf("pip args %q lack the spec's index", ex.Meta.Args)
	}
	lines := strings.Split(strings.TrimSpace(reqs), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "ispec-lk-amd @ http://127.0.0.1:5099/files/ispec_lk_amd-1.0.0-py3-none-any.whl --hash=sha256:fc86484e") {
		t.Errorf("amd64 requirements:\n%s", reqs)
	}
	_, armReqs := lockStepOf(t, img, arm)
	if strings.Contains(armReqs, "ispec-lk-amd") || strings.Count(armReqs, "\n") != 3 {
		t.Errorf("arm64 requirements:\n%s", armReqs)
	}
	if _, ok := LocalMounts(img)[localRequirements]; ok {
		t.Error("the lock file is sent to BuildKit; the graph holds its pins")
	}
	for _, s := range mustSteps(t, img) {
		if s.Name == "[ispec] pip install -r requirements" {
			t.Error("a lock is installed as a requirements file too")
		}
	}
}

func mustSteps(t *testing.T, img *spec.Image) []Step {
	t.Helper()
	steps, err := Steps(img, Input{Platform: amd64, Accounts: debianAccounts()})
	if err != nil {
		t.Fatal(err)
	}
	return steps
}

// TestLockedPackagesPerPlatform: a two-platform spec whose resolution
// differs by a marker (ispec-lk-amd on x86_64 only), with the lock
// `ispec lock` writes from pip's resolution on each platform: each
// platform's image installs its own pins, and the tag covers each
// platform's pins apart.
func TestLockedPackagesPerPlatform(t *testing.T) {
	dir := t.TempDir()
	doc := "name: x\nbase_image: " + testBase + "\npackages: [\"ispec-lk-core[fast]\", \"ispec-lk-amd; platform_machine == 'x86_64'\"]\nplatform: [linux/amd64, linux/arm64]\n"
	bare := loadSpecIn(t, dir, doc, nil)
	pin := func(name, version string) pylock.Pin {
		file := strings.ReplaceAll(name, "-", "_") + "-" + version + "-py3-none-any.whl"
		return pylock.Pin{Name: name, Version: version, File: file, URL: "http://127.0.0.1:5099/files/" + file, SHA256: fmt.Sprintf("%x", sha256.Sum256([]byte(file)))}
	}
	common := []pylock.Pin{pin("ispec-lk-core", "1.0.0"), pin("ispec-lk-fast", "0.5.0"), pin("ispec-lk-util", "1.0.0")}
	l := &spec.Lock{Version: spec.LockVersion, Python: &spec.LockedPython{Inputs: bare.PythonInputs(), Platforms: map[string]*spec.LockedPlatform{
		"linux/amd64": spec.LockedPackages(append([]pylock.Pin{pin("ispec-lk-amd", "1.0.0")}, common...)),
		"linux/arm64": spec.LockedPackages(common),
	}}}
	if err := spec.WriteLock(filepath.Join(dir, "spec.yaml"), l); err != nil {
		t.Fatal(err)
	}
	img := loadSpecIn(t, dir, doc, nil)
	_, amdReqs := lockStepOf(t, img, amd64)
	_, armReqs := lockStepOf(t, img, ocispecs.Platform{OS: "linux", Architecture: "arm64"})
	if !strings.Contains(amdReqs, "ispec-lk-amd @ ") || strings.Count(amdReqs, " --hash=sha256:") != 4 {
		t.Errorf("amd64 requirements:\n%s", amdReqs)
	}
	if strings.Contains(armReqs, "ispec-lk-amd") || strings.Count(armReqs, " --hash=sha256:") != 3 {
		t.Errorf("arm64 requirements:\n%s", armReqs)
	}
	var hashed struct {
		Spec struct {
			PythonPinned map[string]string `json:"python_pinned"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(img.Document, &hashed); err != nil {
		t.Fatal(err)
	}
	pp := hashed.Spec.PythonPinned
	if len(pp) != 2 || pp["linux/amd64"] == "" || pp["linux/amd64"] == pp["linux/arm64"] {
		t.Errorf("python_pinned = %v; want one digest per platform, differing", pp)
	}
}

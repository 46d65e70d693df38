package builder

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/buildkit/solver/pb"
	digest "github.com/opencontainers/go-digest"
	ocispecs "github.com/opencontainers/image-spec/specs-go/v1"

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

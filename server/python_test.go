package server_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/ispec-dev/ispec/internal/testenv"
)

// The Python client test: other tools call the service, not only Go. It
// runs examples/python-client/ispec_client.py with Debian's python3-grpcio
// and stubs generated from the committed .proto against an `ispec serve`
// process.

// pyBuild is what `ispec_client.py build` prints.
type pyBuild struct {
	Ref       string   `json:"ref"`
	Digest    string   `json:"digest"`
	Outcome   string   `json:"outcome"`
	BuildID   string   `json:"build_id"`
	BytesSent int64    `json:"bytes_sent"`
	Events    []string `json:"events"`
}

// pyResolve is what `ispec_client.py resolve` prints.
type pyResolve struct {
	Image struct {
		Ref, Registry, Repository, Tag string
		SpecHash                       string `json:"spec_hash"`
	} `json:"image"`
}

// pyLookup is what `ispec_client.py lookup` prints.
type pyLookup struct {
	Ref, State, Digest, Source, Error string
}

func TestPythonClient(t *testing.T) {
	env := testenv.Load(t)
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	stubs := pyStubs(t, root)
	bin := pyBuildIspec(t, root)
	token := "py-client-token-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	addr := pyServe(t, bin, env, token)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	// A spec with a copied folder (a nested folder, an executable, a
	// symlink) and a copied file, on the busybox fixture.
	proj := t.TempDir()
	pyWrite(t, proj, "app/main.py", "print('hello from python client')\n", 0o755)
	pyWrite(t, proj, "app/sub/data.txt", "some data\n", 0o644)
	pyWrite(t, proj, "notes.txt", "notes copied by the python client\n", 0o644)
	if err := os.Symlink("main.py", filepath.Join(proj, "app", "link.py")); err != nil {
		t.Fatal(err)
	}
	contentBytes := int64(len("print('hello from python client')\n") + len("some data\n") + len("notes copied by the python client\n"))
	specFile := filepath.Join(proj, "imagespec.json")
	specDoc := fmt.Sprintf(`{
  "name": "pyclient-%d",
  "registry": "%s/pyclient",
  "base_image": "%s",
  "copy": ["app", "notes.txt"]
}
`, time.Now().UnixNano(), env.Registry, env.BaseBusybox)
	pyWrite(t, proj, "imagespec.json", specDoc, 0o644)

	py := func(args ...string) (string, string, int) {
		return pyRun(t, root, stubs, append([]string{"--server", addr, "--token-file", tokenFile}, args...)...)
	}

	// Resolve: the same reference as the CLI computes locally.
	out, errOut, code := py("resolve", specFile)
	var res pyResolve
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil {
		t.Fatalf("resolve: exit %d, out %q, err %q", code, out, errOut)
	}
	tagOut, tagErr, tagCode := pyCLI(t, bin, env, "tag", specFile)
	if tagCode != 0 {
		t.Fatalf("ispec tag: exit %d: %s", tagCode, tagErr)
	}
	wantRef := strings.TrimSpace(tagOut)
	if res.Image.Ref != wantRef || res.Image.Tag == "" || !strings.HasSuffix(wantRef, ":"+res.Image.Tag) || len(res.Image.SpecHash) != 64 {
		t.Fatalf("resolve gave %+v; ispec tag gives %s", res.Image, wantRef)
	}
	if res.Image.Registry != env.Registry {
		t.Errorf("resolve: registry %q, want %q", res.Image.Registry, env.Registry)
	}

	// Before the build the image is absent.
	out, errOut, code = py("lookup", specFile)
	var lk pyLookup
	if code != 0 || json.Unmarshal([]byte(out), &lk) != nil || lk.State != "ABSENT" || lk.Ref != wantRef {
		t.Fatalf("lookup before the build: exit %d, out %q, err %q; want ABSENT", code, out, errOut)
	}

	// Build: the first call carries no bytes and gets files_needed; the
	// second sends them and builds.
	out, errOut, code = py("build", specFile)
	var b1 pyBuild
	if code != 0 || json.Unmarshal([]byte(out), &b1) != nil {
		t.Fatalf("build: exit %d, out %q, err %q", code, out, errOut)
	}
	if b1.Outcome != "BUILT" || b1.Ref != wantRef || !strings.HasPrefix(b1.Digest, "sha256:") || b1.BuildID == "" {
		t.Fatalf("build: %+v; want BUILT %s with a digest and a build id", b1, wantRef)
	}
	if b1.BytesSent != contentBytes {
		t.Errorf("build uploaded %d file bytes, want the copied files' %d", b1.BytesSent, contentBytes)
	}
	pyEventsInOrder(t, "build", b1.Events, "files_needed", "accepted", "building", "pushed", "done")
	if !strings.Contains(errOut, "files_needed") || !strings.Contains(errOut, "pushed") {
		t.Errorf("build printed no events on stderr: %q", errOut)
	}

	// The registry has it, with the uploaded files in it.
	ref, err := name.ParseReference(wantRef, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	desc, err := remote.Head(ref)
	if err != nil || desc.Digest.String() != b1.Digest {
		t.Fatalf("registry has %v (%v), build said %s", desc, err, b1.Digest)
	}
	img := testenv.Pull(t, wantRef)
	for p, want := range map[string]string{
		"root/notes.txt":        "notes copied by the python client\n",
		"root/app/main.py":      "print('hello from python client')\n",
		"root/app/sub/data.txt": "some data\n",
		"root/app/link.py":      "main.py",
	} {
		if got, ok := testenv.ImageFile(t, img, p); !ok || got != want {
			t.Errorf("image file %s: %q (present %v), want %q", p, got, ok, want)
		}
	}

	// Lookup: exists, with the same digest.
	out, errOut, code = py("lookup", specFile)
	lk = pyLookup{}
	if code != 0 || json.Unmarshal([]byte(out), &lk) != nil {
		t.Fatalf("lookup: exit %d, out %q, err %q", code, out, errOut)
	}
	if lk.State != "EXISTS" || lk.Digest != b1.Digest || lk.Ref != wantRef {
		t.Errorf("lookup: %+v; want EXISTS %s", lk, b1.Digest)
	}

	// Build again: found, and no file byte uploaded.
	out, errOut, code = py("build", specFile)
	var b2 pyBuild
	if code != 0 || json.Unmarshal([]byte(out), &b2) != nil {
		t.Fatalf("second build: exit %d, out %q, err %q", code, out, errOut)
	}
	if b2.Outcome != "FOUND" || b2.Digest != b1.Digest || b2.Ref != wantRef {
		t.Errorf("second build: %+v; want FOUND %s", b2, b1.Digest)
	}
	if b2.BytesSent != 0 {
		t.Errorf("second build uploaded %d file bytes, want none", b2.BytesSent)
	}
	pyEventsInOrder(t, "second build", b2.Events, "found", "done")
	for _, ev := range b2.Events {
		if ev == "files_needed" || ev == "accepted" || ev == "building" {
			t.Errorf("second build had a %s event: %v", ev, b2.Events)
		}
	}
}

// TestPythonClientRefused checks that the Python client gets the service's
// refusals with the CLI's exit codes: a refused call 3, an invalid spec 2
// naming the file, line and field.
func TestPythonClientRefused(t *testing.T) {
	env := testenv.Load(t)
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	stubs := pyStubs(t, root)
	bin := pyBuildIspec(t, root)
	token := "py-refused-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	addr := pyServe(t, bin, env, token)
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	pyWrite(t, dir, "good.json", fmt.Sprintf(`{"name": "pyrefused-%d", "registry": "%s/pyclient", "base_image": "%s"}`, time.Now().UnixNano(), env.Registry, env.BaseBusybox), 0o644)
	wrong := filepath.Join(dir, "wrong-token")
	pyWrite(t, dir, "wrong-token", "not-"+token+"\n", 0o600)
	right := filepath.Join(dir, "token")
	pyWrite(t, dir, "token", token+"\n", 0o600)

	for _, tc := range []struct {
		name string
		args []string
	}{
		{"no token", []string{"--server", addr, "build", good}},
		{"wrong token", []string{"--server", addr, "--token-file", wrong, "build", good}},
		{"wrong token resolve", []string{"--server", addr, "--token-file", wrong, "resolve", good}},
		{"wrong token lookup", []string{"--server", addr, "--token-file", wrong, "lookup", good}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, code := pyRun(t, root, stubs, tc.args...)
			if code != 3 || !strings.Contains(errOut, "refused the call") || out != "" {
				t.Errorf("exit %d, out %q, err %q; want 3, refused", code, out, errOut)
			}
		})
	}

	t.Run("unreachable server", func(t *testing.T) {
		out, errOut, code := pyRun(t, root, stubs, "--server", "127.0.0.1:1", "--token-file", right, "build", good)
		if code != 3 || !strings.Contains(errOut, "not reachable") || out != "" {
			t.Errorf("exit %d, out %q, err %q; want 3, not reachable", code, out, errOut)
		}
	})

	for _, tc := range []struct {
		name, doc string
		want      []string // in the error, each naming file:line: field
	}{
		{"missing copy", `{
  "name": "x", "registry": "REG/pyclient", "base_image": "BASE",
  "copy": [
    "absent",
    "there.txt"
  ]
}`, []string{"imagespec.json:4: copy[0]: absent does not exist"}},
		{"unknown field", `{
  "name": "x", "registry": "REG/pyclient", "base_image": "BASE",
  "pacakges": ["numpy"]
}`, []string{`imagespec.json:3: unknown field "pacakges"; did you mean "packages"?`}},
		{"wrong types", `{
  "name": "x", "registry": "REG/pyclient", "base_image": "BASE",
  "commands": "echo not a list",
  "env": {"A": ["b"]}
}`, []string{"imagespec.json:3: commands: expected a list", "imagespec.json:4: env.A: expected a string"}},
		{"bad registry", `{
  "name": "x",
  "registry": "REG/Not Valid", "base_image": "BASE"
}`, []string{"imagespec.json:3: registry:"}},
		{"not json", `{"name": "x",`, []string{"imagespec.json:1:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := t.TempDir()
			pyWrite(t, d, "there.txt", "here\n", 0o644)
			doc := strings.NewReplacer("REG", env.Registry, "BASE", env.BaseBusybox).Replace(tc.doc)
			pyWrite(t, d, "imagespec.json", doc, 0o644)
			for _, cmd := range []string{"resolve", "lookup", "build"} {
				out, errOut, code := pyRun(t, root, stubs, "--server", addr, "--token-file", right, cmd, filepath.Join(d, "imagespec.json"))
				if code != 2 || out != "" {
					t.Errorf("%s: exit %d, out %q, err %q; want 2", cmd, code, out, errOut)
				}
				for _, w := range tc.want {
					if !strings.Contains(errOut, w) {
						t.Errorf("%s: error %q does not contain %q", cmd, errOut, w)
					}
				}
			}
		})
	}
	// Nothing was built by any of these calls: the valid spec's image is
	// still absent.
	out, errOut, code := pyRun(t, root, stubs, "--server", addr, "--token-file", right, "lookup", good)
	if code != 0 || !strings.Contains(out, `"state": "ABSENT"`) {
		t.Errorf("lookup after refused builds: exit %d, out %q, err %q; want ABSENT", code, out, errOut)
	}
}

// pyEventsInOrder checks that want appear in got in this order.
func pyEventsInOrder(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	i := 0
	for _, ev := range got {
		if i < len(want) && ev == want[i] {
			i++
		}
	}
	if i < len(want) || got[len(got)-1] != want[len(want)-1] {
		t.Errorf("%s: events %v; want %v in this order, ending with %s", what, got, want, want[len(want)-1])
	}
}

func pyWrite(t *testing.T, dir, rel, content string, mode os.FileMode) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

// pyMissing skips the test, or fails it when CI is set: CI must run it.
func pyMissing(t *testing.T, format string, args ...any) {
	t.Helper()
	testenv.Missing(t, format, args...)
}

// pyStubs generates the Python stubs of the committed .proto (installing
// Debian's packages when missing and allowed) and checks that Debian's
// interpreter imports them with grpc.
func pyStubs(t *testing.T, root string) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("bash", filepath.Join(root, "scripts", "proto.sh"), "python", dir)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		pyMissing(t, "generating the Python stubs (scripts/proto.sh python): %v\n%s", err, out)
	}
	check := exec.Command("/usr/bin/python3", "-c", "import grpc\nfrom ispec.v1 import ispec_pb2, ispec_pb2_grpc")
	check.Env = append(os.Environ(), "PYTHONPATH="+dir)
	if out, err := check.CombinedOutput(); err != nil {
		pyMissing(t, "/usr/bin/python3 does not import grpc and the stubs (Debian: apt-get install python3-grpcio python3-protobuf): %v\n%s", err, out)
	}
	return dir
}

var pyBinary = struct {
	once sync.Once
	bin  string
	err  error
}{}

// pyBuildIspec builds the CLI once per test run.
func pyBuildIspec(t *testing.T, root string) string {
	t.Helper()
	pyBinary.once.Do(func() {
		dir, err := os.MkdirTemp("", "ispec-py-bin")
		if err != nil {
			pyBinary.err = err
			return
		}
		bin := filepath.Join(dir, "ispec")
		cmd := exec.Command("go", "build", "-o", bin, "./cmd/ispec")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			pyBinary.err = fmt.Errorf("go build ./cmd/ispec: %v\n%s", err, out)
			return
		}
		pyBinary.bin = bin
	})
	if pyBinary.err != nil {
		t.Fatal(pyBinary.err)
	}
	return pyBinary.bin
}

// pyIsolated is the environment of an ispec process of the test: the test
// environment's BuildKit, and an empty cache, config and Docker config.
func pyIsolated(t *testing.T, env *testenv.Env) []string {
	t.Helper()
	var out []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "ISPEC_") || k == "BUILDKIT_HOST" || k == "DOCKER_CONFIG" || k == "XDG_CONFIG_HOME" {
			continue
		}
		out = append(out, kv)
	}
	return append(out, "BUILDKIT_HOST="+env.BuildkitHost, "ISPEC_CACHE_DIR="+t.TempDir(),
		"XDG_CONFIG_HOME="+t.TempDir(), "DOCKER_CONFIG="+t.TempDir())
}

// pyCLI runs the CLI locally (not through the server).
func pyCLI(t *testing.T, bin string, env *testenv.Env, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = pyIsolated(t, env)
	return pyExec(t, cmd)
}

// pyServe starts `ispec serve` on a free loopback port with token as its
// only token, and returns its address. The server gets SIGTERM when the
// test ends.
func pyServe(t *testing.T, bin string, env *testenv.Env, token string) string {
	t.Helper()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "tokens")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
		"--token-file", tokenFile, "--log-format", "json", "--upload-dir", dir)
	cmd.Env = pyIsolated(t, env)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var logs strings.Builder
	addrc := make(chan string, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			mu.Lock()
			logs.WriteString(sc.Text() + "\n")
			mu.Unlock()
			var rec struct{ Msg, Listen string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "serving" && rec.Listen != "" {
				select {
				case addrc <- rec.Listen:
				default:
				}
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	serverLogs := func() string {
		mu.Lock()
		defer mu.Unlock()
		return logs.String()
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		exited := make(chan error, 1)
		go func() { <-done; exited <- cmd.Wait() }()
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("ispec serve after SIGTERM: %v\n%s", err, serverLogs())
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Errorf("ispec serve did not stop within 30s of SIGTERM\n%s", serverLogs())
		}
		if t.Failed() {
			t.Logf("ispec serve logs:\n%s", serverLogs())
		}
	})
	select {
	case addr := <-addrc:
		return addr
	case <-done:
		t.Fatalf("ispec serve exited before serving:\n%s", serverLogs())
	case <-time.After(60 * time.Second):
		t.Fatalf("ispec serve did not start within 60s:\n%s", serverLogs())
	}
	return ""
}

// pyRun runs the example Python client with the generated stubs.
func pyRun(t *testing.T, root, stubs string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	script := filepath.Join(root, "examples", "python-client", "ispec_client.py")
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), "PYTHONPATH="+stubs, "ISPEC_TOKEN=", "ISPEC_SERVER=")
	return pyExec(t, cmd)
}

func pyExec(t *testing.T, cmd *exec.Cmd) (string, string, int) {
	t.Helper()
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running %s: %v", cmd.Path, err)
	}
	return out.String(), errb.String(), code
}

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/ispec-dev/ispec/internal/testenv"
)

// serveProc is `ispec serve` running as a process.
type serveProc struct {
	cmd  *exec.Cmd
	addr string
	log  *syncBuffer
	done chan error
}

// syncBuffer is a buffer a process writes while the test reads it.
type syncBuffer struct {
	mu      sync.Mutex
	b       strings.Builder
	changed chan struct{} // closed and replaced on each write
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	return s.b.Write(p)
}

// waitFor waits until the buffer holds substr, failing after d.
func (s *syncBuffer) waitFor(t *testing.T, substr string, d time.Duration) {
	t.Helper()
	timeout := time.After(d)
	for {
		s.mu.Lock()
		if strings.Contains(s.b.String(), substr) {
			s.mu.Unlock()
			return
		}
		if s.changed == nil {
			s.changed = make(chan struct{})
		}
		changed := s.changed
		s.mu.Unlock()
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("no %q within %s in:\n%s", substr, d, s.String())
		}
	}
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startServe starts `ispec serve` on a free loopback port and waits until
// it serves.
func startServe(t *testing.T, args ...string) *serveProc {
	t.Helper()
	bin, err := ispecBinary()
	if err != nil {
		t.Fatalf("building ispec: %v", err)
	}
	cmd := exec.Command(bin, append([]string{"serve", "--listen", "127.0.0.1:0", "--metrics-listen", "", "--log-format", "json"}, args...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &serveProc{cmd: cmd, log: &syncBuffer{}, done: make(chan error, 1)}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			s.log.Write([]byte(line + "\n"))
			var rec struct{ Msg, Listen string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "serving" {
				addr <- rec.Listen
			}
		}
		io.Copy(io.Discard, stderr)
		s.done <- cmd.Wait()
	}()
	select {
	case s.addr = <-addr:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("ispec serve did not start:\n%s", s.log)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-s.done
	})
	return s
}

func TestBuildAndExistsThroughServer(t *testing.T) {
	env := e2e(t)
	tokens := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(tokens, []byte("# callers\nsecret-token-1\n"), 0o600)
	srv := startServe(t, "--token-file", tokens)
	t.Setenv("ISPEC_TOKEN", "secret-token-1")
	s := uniqueSpec(t, env, "commands: [\"echo built > /built.txt\"]\n")

	out, errOut, code := runProc(t, "build", "--server", srv.addr, "--json", "--progress", "plain", s)
	var first buildResult
	if code != 0 || json.Unmarshal([]byte(out), &first) != nil || first.Outcome != "built" || !first.Built {
		t.Fatalf("first build: exit %d out %q\n%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "echo built") {
		t.Errorf("the server's progress is not shown as a local build's: %q", errOut)
	}
	out, _, code = runProc(t, "build", "--server", srv.addr, s)
	if code != 0 || strings.TrimSpace(out) != first.Ref+"@"+first.Digest {
		t.Errorf("second build: exit %d out %q, want %s@%s", code, out, first.Ref, first.Digest)
	}
	out, _, code = runProc(t, "build", "--server", srv.addr, "--json", s)
	var second buildResult
	if code != 0 || json.Unmarshal([]byte(out), &second) != nil || second.Outcome != "found" || second.Built {
		t.Errorf("third build: exit %d out %q, want found", code, out)
	}
	out, _, code = runProc(t, "exists", "--server", srv.addr, s)
	if code != 0 || strings.TrimSpace(out) != first.Ref+"@"+first.Digest {
		t.Errorf("exists: exit %d out %q", code, out)
	}
	absent := uniqueSpec(t, env, "")
	if _, errOut, code := runProc(t, "exists", "--server", srv.addr, absent); code != exitAbsent || !strings.Contains(errOut, "absent") {
		t.Errorf("exists of an absent image: exit %d %q, want 1", code, errOut)
	}
	ref, _ := name.ParseReference(first.Ref, name.Insecure)
	if puts := testenv.CountManifestPuts(t, env.RegistryLog, ref.Context().Name()); puts != 1 {
		t.Errorf("%d manifest PUTs, want 1", puts)
	}

	bad := writeFiles(t, map[string]string{"bad.yaml": "name: bad\nregistry: " + env.Registry + "/cli\npackages: ['flask', 'not a req!']\n"})
	if _, errOut, code := runProc(t, "build", "--server", srv.addr, filepath.Join(bad, "bad.yaml")); code != exitInvalid || !strings.Contains(errOut, "bad.yaml:3: packages[1]") {
		t.Errorf("invalid spec: exit %d %q, want 2 naming bad.yaml:3 packages[1]", code, errOut)
	}
	t.Setenv("ISPEC_TOKEN", "wrong")
	if _, errOut, code := runProc(t, "build", "--server", srv.addr, s); code != exitUnavailable || !strings.Contains(errOut, "refused") {
		t.Errorf("wrong token: exit %d %q, want 3", code, errOut)
	}
	if _, errOut, code := runProc(t, "build", "--server", "127.0.0.1:1", s); code != exitUnavailable || !strings.Contains(errOut, "not reachable") {
		t.Errorf("unreachable server: exit %d %q, want 3", code, errOut)
	}
}

func TestServeDrainsOnSIGTERM(t *testing.T) {
	env := e2e(t)
	srv := startServe(t)
	// A nonce in the step: BuildKit's cache must not make it instant.
	slow := uniqueSpec(t, env, fmt.Sprintf("commands: [\"sleep 4; echo %d > /built.txt\"]\n", time.Now().UnixNano()))
	bin, err := ispecBinary()
	if err != nil {
		t.Fatal(err)
	}
	build := exec.Command(bin, "build", "--server", srv.addr, "--json", "--progress", "plain", slow)
	// The process writes while the test reads: buffers safe for both.
	var out, errb syncBuffer
	build.Stdout, build.Stderr = &out, &errb
	if err := build.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the build runs on the server.
	errb.waitFor(t, "commands[0]", 20*time.Second)
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// The server says so once it refuses new builds.
	srv.log.waitFor(t, "shutting down", 20*time.Second)
	other := uniqueSpec(t, env, "")
	if _, errOut, code := runProc(t, "build", "--server", srv.addr, other); code != exitUnavailable {
		t.Errorf("a new build during the drain: exit %d %q, want 3 (refused)", code, errOut)
	}
	// A caller of the tag that is still building joins it.
	joinOut, errOut, code := runProc(t, "build", "--server", srv.addr, "--json", slow)
	var joined buildResult
	if code != 0 || json.Unmarshal([]byte(joinOut), &joined) != nil || joined.Outcome != "joined" {
		t.Errorf("a caller of the running build during the drain: exit %d out %q %q, want joined", code, joinOut, errOut)
	}
	if err := build.Wait(); err != nil {
		t.Fatalf("the running build: %v\n%s", err, errb.String())
	}
	var res buildResult
	if json.Unmarshal([]byte(out.String()), &res) != nil || res.Outcome != "built" {
		t.Fatalf("the running build: %q", out.String())
	}
	select {
	case err := <-srv.done:
		if err != nil {
			t.Errorf("serve exited with %v after draining\n%s", err, srv.log)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not exit after draining\n%s", srv.log)
	}
	srv.done <- nil // for the cleanup
	if !strings.Contains(srv.log.String(), "shutting down") {
		t.Errorf("serve's log does not say it drained:\n%s", srv.log)
	}
}

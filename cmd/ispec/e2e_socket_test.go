package main

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health/grpc_health_v1"
)

func TestBuildAndExistsThroughAUnixSocket(t *testing.T) {
	env := e2e(t)
	dir, err := os.MkdirTemp("", "isk") // short: a socket path has at most 107 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "ispec.sock")
	srv := startServe(t, "--listen", "unix://"+sock)
	if srv.addr != sock {
		t.Fatalf("serving on %q, want %q", srv.addr, sock)
	}
	st, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want 0600", st.Mode())
	}
	s := uniqueSpec(t, env, "commands: [\"echo built > /built.txt\"]\n")
	out, errOut, code := runProc(t, "build", "--server", "unix://"+sock, "--json", s)
	var res buildResult
	if code != 0 || json.Unmarshal([]byte(out), &res) != nil || res.Outcome != "built" {
		t.Fatalf("build --server unix://: exit %d out %q\n%s", code, out, errOut)
	}
	out, errOut, code = runProc(t, "exists", "--server", "unix://"+sock, s)
	if code != 0 || strings.TrimSpace(out) != res.Ref+"@"+res.Digest {
		t.Errorf("exists --server unix://: exit %d out %q %s", code, out, errOut)
	}
	if !strings.Contains(srv.log.String(), `"caller":"anonymous"`) {
		t.Errorf("the server's log does not name the caller:\n%s", srv.log)
	}
}

func TestServeWithTokensBehindATLSProxy(t *testing.T) {
	e2e(t) // health is SERVING once BuildKit answers
	tokens := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(tokens, []byte("ci:secret-token\n"), 0o600)
	srv := startServe(t, "--listen", "0.0.0.0:0", "--token-file", tokens, "--tls-terminated-by-proxy")
	_, port, err := net.SplitHostPort(srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient("127.0.0.1:"+port, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	watchHealth(t, conn, grpc_health_v1.HealthCheckResponse_SERVING, srv.log)
}

func TestServeJudgesLoopbackByTheBoundAddress(t *testing.T) {
	isolate(t)
	tokens := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(tokens, []byte("ci:secret-token\n"), 0o600)
	// localhost is no IP: what it resolves to is bound, and that is loopback.
	srv := startServe(t, "--listen", "localhost:0", "--token-file", tokens)
	host, _, err := net.SplitHostPort(srv.addr)
	if err != nil || !net.ParseIP(host).IsLoopback() {
		t.Errorf("serving on %q, want a loopback address", srv.addr)
	}
}

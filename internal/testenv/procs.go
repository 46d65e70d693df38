package testenv

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
)

// Redis is a redis-server process of one test, on a loopback port.
type Redis struct {
	// Addr is host:port.
	Addr string
	t    testing.TB
	cmd  *exec.Cmd
}

// StartRedis starts redis-server (Debian's package) on a free loopback
// port, without persistence; it is stopped when the test ends. Without
// redis-server the test is skipped (failed in CI).
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		msg := "redis-server not installed (apt-get install redis-server; scripts/devenv.sh up installs it)"
		if ci, _ := strconv.ParseBool(os.Getenv("CI")); ci {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	r := &Redis{Addr: freeAddr(t), t: t}
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// URL returns redis://Addr.
func (r *Redis) URL() string { return "redis://" + r.Addr }

// Start starts the server again on the same port (after Stop), empty.
func (r *Redis) Start() {
	r.t.Helper()
	_, port, _ := net.SplitHostPort(r.Addr)
	r.cmd = exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no")
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("starting redis-server: %v", err)
	}
	if err := waitDial("tcp", r.Addr, 10*time.Second); err != nil {
		r.t.Fatalf("redis-server on %s: %v", r.Addr, err)
	}
}

// Stop kills the server; it is idempotent.
func (r *Redis) Stop() {
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	r.cmd.Process.Kill()
	r.cmd.Wait()
	r.cmd = nil
}

// Buildkitd is a BuildKit daemon of one test, besides the environment's.
type Buildkitd struct {
	// Addr is its unix:// address.
	Addr string
	// Log is its log file.
	Log  string
	t    testing.TB
	args []string
	cmd  *exec.Cmd
}

// StartBuildkitd starts another buildkitd (the binary scripts/devenv.sh
// built, from its cache) with its own state and socket, configured as the
// environment's (the loopback registry over plain HTTP); it is stopped
// when the test ends.
func (e *Env) StartBuildkitd(t testing.TB) *Buildkitd {
	t.Helper()
	bin, err := buildkitdBinary(e)
	if err != nil {
		t.Skipf("no buildkitd binary: %v", err)
	}
	dir, err := os.MkdirTemp("", "ispec-bk-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	_, port, _ := net.SplitHostPort(e.Registry)
	conf := fmt.Sprintf("[worker.oci]\n  enabled = true\n  snapshotter = \"overlayfs\"\n[worker.containerd]\n  enabled = false\n"+
		"[registry.\"127.0.0.1:%s\"]\n  http = true\n  insecure = true\n[registry.\"localhost:%s\"]\n  http = true\n  insecure = true\n", port, port)
	if err := os.WriteFile(filepath.Join(dir, "buildkitd.toml"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	b := &Buildkitd{Addr: "unix://" + filepath.Join(dir, "buildkitd.sock"), Log: filepath.Join(dir, "buildkitd.log"), t: t}
	b.args = []string{bin, "--config", filepath.Join(dir, "buildkitd.toml"), "--root", filepath.Join(dir, "root"), "--addr", b.Addr}
	b.Start()
	t.Cleanup(b.Stop)
	return b
}

// Start starts the daemon (again, after Stop) and waits until it lists
// its workers.
func (b *Buildkitd) Start() {
	b.t.Helper()
	logf, err := os.OpenFile(b.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		b.t.Fatal(err)
	}
	defer logf.Close()
	b.cmd = exec.Command(b.args[0], b.args[1:]...)
	b.cmd.Stdout, b.cmd.Stderr = logf, logf
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := b.cmd.Start(); err != nil {
		b.t.Fatalf("starting buildkitd: %v", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := client.New(ctx, b.Addr)
		if err == nil {
			var ws []*client.WorkerInfo
			ws, err = c.ListWorkers(ctx)
			c.Close()
			if err == nil && len(ws) == 0 {
				err = fmt.Errorf("no workers")
			}
		}
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("buildkitd at %s did not answer: %v (see %s)", b.Addr, err, b.Log)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Stop stops the daemon (SIGTERM, then SIGKILL); it is idempotent.
func (b *Buildkitd) Stop() {
	if b.cmd == nil || b.cmd.Process == nil {
		return
	}
	b.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { b.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		syscall.Kill(-b.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	b.cmd = nil
}

// buildkitdBinary finds the buildkitd scripts/devenv.sh built: next to
// the environment's, or in its download cache.
func buildkitdBinary(e *Env) (string, error) {
	if p, err := exec.LookPath("buildkitd"); err == nil {
		return p, nil
	}
	cache := os.Getenv("ISPEC_DEVENV_CACHE")
	if cache == "" {
		base := os.Getenv("XDG_CACHE_HOME")
		if base == "" {
			home, _ := os.UserHomeDir()
			base = filepath.Join(home, ".cache")
		}
		cache = filepath.Join(base, "ispec-devenv")
	}
	matches, _ := filepath.Glob(filepath.Join(cache, "buildkit-*", "buildkitd"))
	if len(matches) == 0 {
		return "", fmt.Errorf("no buildkit-*/buildkitd under %s", cache)
	}
	return matches[len(matches)-1], nil
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitDial(network, addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := net.DialTimeout(network, addr, time.Second)
		if err == nil {
			return c.Close()
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

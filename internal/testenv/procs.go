package testenv

import (
	"bufio"
	"net"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
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
	External(t)
	if _, err := exec.LookPath("redis-server"); err != nil {
		Missing(t, "redis-server not installed (apt-get install redis-server; scripts/devenv.sh up installs it)")
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
	out, err := r.cmd.StdoutPipe()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("starting redis-server: %v", err)
	}
	// The server says when it accepts connections; its log is read to
	// the end so that it never blocks on a full pipe.
	ready, ended := make(chan struct{}), make(chan struct{})
	var log strings.Builder
	var mu sync.Mutex
	go func() {
		defer close(ended)
		sc := bufio.NewScanner(out)
		once := sync.Once{}
		for sc.Scan() {
			mu.Lock()
			if log.Len() < 4096 {
				log.WriteString(sc.Text() + "\n")
			}
			mu.Unlock()
			if strings.Contains(sc.Text(), "Ready to accept connections") {
				once.Do(func() { close(ready) })
			}
		}
	}()
	select {
	case <-ready:
	case <-ended:
		mu.Lock()
		defer mu.Unlock()
		r.t.Fatalf("redis-server on %s ended before it was ready:\n%s", r.Addr, log.String())
	case <-time.After(10 * time.Second):
		mu.Lock()
		defer mu.Unlock()
		r.t.Fatalf("redis-server on %s: not ready within 10s:\n%s", r.Addr, log.String())
	}
}

// Pause stops the server's process (SIGSTOP): connections stay open and
// every command waits, as with a Redis that hangs; Resume or Stop ends
// it.
func (r *Redis) Pause() {
	r.t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		r.t.Fatalf("pausing redis-server: %v", err)
	}
}

// Resume continues a paused server (SIGCONT).
func (r *Redis) Resume() {
	r.t.Helper()
	if r.cmd == nil || r.cmd.Process == nil {
		return
	}
	if err := r.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		r.t.Fatalf("resuming redis-server: %v", err)
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

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

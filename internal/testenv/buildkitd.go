package testenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/buildkit/client"
)

// Buildkitd is a BuildKit daemon of one test, with its own (empty) cache.
type Buildkitd struct {
	// Host is its address, "unix:///.../buildkitd.sock".
	Host string
	// Root is its state directory.
	Root string
	// LogPath is the file holding its output.
	LogPath string

	t      testing.TB
	args   []string
	cmd    *exec.Cmd
	exited chan error
}

// StartBuildkitd starts a second, fresh BuildKit daemon: the devenv's
// buildkitd binary and registry settings, with its own root, socket and
// trace socket in temporary directories, so that it shares nothing with
// the devenv's daemon (no cache, no content store). It waits until the
// daemon lists its workers and stops it when the test ends. extraArgs go
// to buildkitd after those (another --addr, --tlscacert, ...); Host stays
// its unix socket.
func (e *Env) StartBuildkitd(t testing.TB, extraArgs ...string) *Buildkitd {
	t.Helper()
	if e.BuildkitdBin == "" {
		t.Fatal("no buildkitd binary: the devenv's env.json lacks ISPEC_TEST_BUILDKITD_BIN and none is cached")
	}
	dir := t.TempDir()
	// A unix socket path must fit in 108 bytes.
	sockDir, err := os.MkdirTemp("", "ispec-bk-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	var conf []byte
	if e.BuildkitdConfig != "" {
		if conf, err = os.ReadFile(e.BuildkitdConfig); err != nil {
			t.Fatalf("reading the devenv's buildkitd config: %v", err)
		}
	}
	// The trace socket defaults to a fixed path that the devenv's daemon
	// holds: give this one its own.
	conf = append(conf, fmt.Sprintf("\n[otel]\n  socketPath = %q\n", filepath.Join(sockDir, "otel.sock"))...)
	confPath := filepath.Join(dir, "buildkitd.toml")
	if err := os.WriteFile(confPath, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	d := &Buildkitd{
		Host:    "unix://" + filepath.Join(sockDir, "buildkitd.sock"),
		Root:    filepath.Join(dir, "root"),
		LogPath: filepath.Join(dir, "buildkitd.log"),
		t:       t,
	}
	d.args = append([]string{e.BuildkitdBin, "--config", confPath, "--root", d.Root, "--addr", d.Host}, extraArgs...)
	d.Start()
	t.Cleanup(d.Stop)
	return d
}

// Start starts the daemon (again, after Stop) and waits until it lists
// its workers.
func (d *Buildkitd) Start() {
	d.t.Helper()
	logFile, err := os.OpenFile(d.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		d.t.Fatal(err)
	}
	defer logFile.Close()
	d.cmd = exec.Command(d.args[0], d.args[1:]...)
	d.cmd.Stdout, d.cmd.Stderr = logFile, logFile
	if err := d.cmd.Start(); err != nil {
		d.t.Fatalf("starting buildkitd: %v", err)
	}
	d.exited = make(chan error, 1)
	go func(cmd *exec.Cmd, exited chan error) { exited <- cmd.Wait() }(d.cmd, d.exited)
	if err := waitWorkers(d.Host, d.exited, 60*time.Second); err != nil {
		out, _ := os.ReadFile(d.LogPath)
		d.t.Fatalf("buildkitd did not start: %v\n%s", err, tail(string(out), 2000))
	}
}

// Stop stops the daemon (SIGINT, then SIGKILL); it is idempotent.
func (d *Buildkitd) Stop() {
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Signal(os.Interrupt)
	select {
	case <-d.exited:
	case <-time.After(20 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
	d.cmd = nil
}

// waitWorkers polls the daemon until it lists a worker. BuildKit's
// readiness is the state of another process with no event to wait on:
// this is the test environment's one poll, bounded by timeout and ended
// early when the daemon exits.
func waitWorkers(host string, exited <-chan error, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		if c, err := client.New(ctx, host); err == nil {
			wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
			ws, err := c.ListWorkers(wctx)
			wcancel()
			c.Close()
			if err == nil && len(ws) > 0 {
				return nil
			}
		}
		select {
		case err := <-exited:
			return fmt.Errorf("buildkitd exited: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("no workers at %s within %s", host, timeout)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// cachedBuildkitd finds the buildkitd that scripts/devenv.sh built for
// go.mod's BuildKit version, for env files written before they named it.
func cachedBuildkitd() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	ver, err := moduleVersion(filepath.Join(root, "go.mod"), "github.com/moby/buildkit")
	if err != nil {
		return "", err
	}
	cache := os.Getenv("ISPEC_DEVENV_CACHE")
	if cache == "" {
		dir := os.Getenv("XDG_CACHE_HOME")
		if dir == "" {
			home, err := os.UserHomeDir()
			if err != nil {
				return "", err
			}
			dir = filepath.Join(home, ".cache")
		}
		cache = filepath.Join(dir, "ispec-devenv")
	}
	p := filepath.Join(cache, "buildkit-"+ver, "buildkitd")
	if _, err := os.Stat(p); err != nil {
		return "", err
	}
	return p, nil
}

// moduleVersion reads a required module's version from a go.mod file.
func moduleVersion(gomod, module string) (string, error) {
	f, err := os.Open(gomod)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(strings.TrimPrefix(strings.TrimSpace(sc.Text()), "require "))
		if len(fields) >= 2 && fields[0] == module {
			return fields[1], nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", errors.New(module + " is not required in " + gomod)
}

// Kill kills the daemon at once (SIGKILL), as a crash would; Start starts
// it again on the same socket and root.
func (d *Buildkitd) Kill() {
	if d.cmd == nil {
		return
	}
	_ = d.cmd.Process.Kill()
	<-d.exited
	d.cmd = nil
}

// Pause stops the daemon's process (SIGSTOP) without ending it: it
// answers nothing until Resume, and its running steps' containers go on.
func (d *Buildkitd) Pause() {
	d.t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		d.t.Fatalf("pausing buildkitd: %v", err)
	}
}

// Resume continues a paused daemon (SIGCONT).
func (d *Buildkitd) Resume() {
	d.t.Helper()
	if err := d.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		d.t.Fatalf("resuming buildkitd: %v", err)
	}
}

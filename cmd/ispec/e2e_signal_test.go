package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/ispec-dev/ispec/cache"
)

// proc is a running ispec process whose stderr is watched line by line.
type proc struct {
	cmd    *exec.Cmd
	stdout strings.Builder
	mu     sync.Mutex
	stderr strings.Builder
	lines  chan string
	done   chan struct{}
}

// startProc starts the built CLI with args.
func startProc(t *testing.T, args ...string) *proc {
	t.Helper()
	bin, err := ispecBinary()
	if err != nil {
		t.Fatalf("building ispec: %v", err)
	}
	p := &proc{cmd: exec.Command(bin, args...), lines: make(chan string, 1024), done: make(chan struct{})}
	p.cmd.Stdout = &p.stdout
	errPipe, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(errPipe)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
	}()
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	})
	return p
}

// waitFor waits until a stderr line contains s.
func (p *proc) waitFor(t *testing.T, s string, timeout time.Duration) {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l := <-p.lines:
			if strings.Contains(l, s) {
				return
			}
		case <-p.done:
			t.Fatalf("ispec ended before printing %q; stderr:\n%s", s, p.errText())
		case <-deadline:
			t.Fatalf("no %q on stderr after %v; stderr:\n%s", s, timeout, p.errText())
		}
	}
}

func (p *proc) errText() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// wait waits for the process to end and returns its exit code.
func (p *proc) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	ended := make(chan error, 1)
	go func() { <-p.done; ended <- p.cmd.Wait() }()
	select {
	case err := <-ended:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return 0
	case <-time.After(timeout):
		t.Fatalf("ispec did not end within %v; stderr:\n%s", timeout, p.errText())
	}
	return -1
}

// holdLock takes the build lock of the spec's tag in this process, as
// another build would; the returned func releases it.
func holdLock(t *testing.T, cacheDir, specPath string) (ref string, release func()) {
	t.Helper()
	tagOut, errOut, code := run(t, "tag", specPath)
	if code != 0 {
		t.Fatalf("tag: %s", errOut)
	}
	tag, err := name.NewTag(strings.TrimSpace(tagOut), name.StrictValidation)
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := cache.LockTag(context.Background(), cacheDir, tag.Name())
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() { once.Do(func() { unlock() }) }
	t.Cleanup(release)
	return tag.Name(), release
}

// TestBuildWaitsForLockHolder: a build whose tag another process is
// building says so once, with the holder's pid, and goes on when the lock
// is free; a signal while it waits ends it as interrupted.
func TestBuildWaitsForLockHolder(t *testing.T) {
	host := localRegistry(t)
	for _, tc := range []struct {
		name     string
		progress string
		signal   syscall.Signal // 0: release the lock instead
		code     int
	}{
		{"released", "plain", 0, exitUnavailable},
		{"released, json", "json", 0, exitUnavailable},
		{"SIGINT", "plain", syscall.SIGINT, 130},
		{"SIGTERM", "plain", syscall.SIGTERM, 143},
		{"SIGTERM, json", "json", syscall.SIGTERM, 143},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cacheDir := isolate(t)
			// Once the lock is free the build needs BuildKit: unreachable
			// here, so the run ends with 3 and nothing built.
			t.Setenv("BUILDKIT_HOST", "unix:///nonexistent/buildkitd.sock")
			dir := writeFiles(t, map[string]string{"s.yaml": fmt.Sprintf("name: wait-%d\nregistry: %s/team\n", time.Now().UnixNano(), host)})
			s := filepath.Join(dir, "s.yaml")
			ref, release := holdLock(t, cacheDir, s)

			p := startProc(t, "build", "--json", "--progress", tc.progress, s)
			want := fmt.Sprintf("waiting for another build of %s (pid %d) to finish", ref, os.Getpid())
			p.waitFor(t, want, 30*time.Second)
			// That the wait is announced once however long it lasts is
			// counted below over the whole run, once the process ended
			// (and cache's TestLockTagOnWait polls the lock several times
			// on a fake clock).
			if tc.signal != 0 {
				if err := p.cmd.Process.Signal(tc.signal); err != nil {
					t.Fatal(err)
				}
			} else {
				release()
			}
			code := p.wait(t, 30*time.Second)
			errOut := p.errText()
			if code != tc.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, errOut)
			}
			if n := strings.Count(errOut, "waiting for another build"); n != 1 {
				t.Errorf("the wait was announced %d times, want once:\n%s", n, errOut)
			}
			class := classUnavailable
			if tc.signal != 0 {
				class = classInterrupted
				if want := "interrupted by " + signalName(tc.signal); !strings.Contains(errOut, want) {
					t.Errorf("stderr lacks %q:\n%s", want, errOut)
				}
			}
			if tc.progress == "json" {
				objs := stderrJSON(t, errOut)
				if rec := errorOf(t, objs); rec.Class != class {
					t.Errorf("stderr error %+v, want class %s", rec, class)
				}
				notices := 0
				for _, o := range objs {
					if raw, ok := o["notice"]; ok && strings.Contains(string(raw), "waiting for another build") {
						notices++
					}
				}
				if notices != 1 {
					t.Errorf("%d JSON notices of the wait, want 1:\n%s", notices, errOut)
				}
			}
			var rec buildResult
			if err := json.Unmarshal([]byte(p.stdout.String()), &rec); err != nil || rec.Error == nil || rec.Error.Class != class || rec.Ref != ref {
				t.Errorf("build --json printed %q (%v), want a %s record for %s", p.stdout.String(), err, class, ref)
			}
		})
	}
}

// TestBuildInterrupted: SIGINT or SIGTERM during a build step ends the
// build promptly as interrupted (130, 143), distinct from a failed step,
// and pushes nothing.
func TestBuildInterrupted(t *testing.T) {
	env := e2e(t)
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(signalName(sig), func(t *testing.T) {
			// A command of its own, so that BuildKit shares no step with
			// another run.
			s := uniqueSpec(t, env, fmt.Sprintf("commands: [\"echo step-$((40+2))-started; sleep 120; : %d\"]\n", time.Now().UnixNano()))
			tagOut, _, _ := run(t, "tag", s)
			ref := strings.TrimSpace(tagOut)
			p := startProc(t, "build", "--json", "--progress", "plain", s)
			p.waitFor(t, "step-42-started", 120*time.Second) // the step's output, not its name
			start := time.Now()
			if err := p.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			code := p.wait(t, 60*time.Second)
			errOut := p.errText()
			if want := exitSignalBase + int(sig); code != want {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, want, errOut)
			}
			if took := time.Since(start); took > 30*time.Second {
				t.Errorf("took %v to stop after the signal", took)
			}
			if want := "ispec: interrupted by " + signalName(sig); !strings.Contains(errOut, want) {
				t.Errorf("stderr lacks %q:\n%s", want, errOut)
			}
			if strings.Contains(errOut, "warning") {
				t.Errorf("an interrupted build warns:\n%s", errOut)
			}
			if strings.Contains(errOut, "step \"[ispec] commands[0]") {
				t.Errorf("an interrupted build reads as a failed step:\n%s", errOut)
			}
			var rec buildResult
			if err := json.Unmarshal([]byte(p.stdout.String()), &rec); err != nil || rec.Error == nil || rec.Error.Class != classInterrupted {
				t.Errorf("build --json printed %q, want an interrupted record", p.stdout.String())
			}
			assertNothingPushed(t, env, ref)
		})
	}
}

// TestBuildBaseImageUnavailable: a base image whose registry cannot be
// reached (refused, unknown host) is 3, as for the image's own registry;
// a base the registry does not have is 2, as lock says. Nothing is pushed.
func TestBuildBaseImageUnavailable(t *testing.T) {
	env := e2e(t)
	for _, tc := range []struct {
		base string
		code int
		want string
	}{
		{"127.0.0.1:1/x/base:1", exitUnavailable, "its registry is unavailable"},
		{"nonexistent.invalid/x/base:1", exitUnavailable, "its registry is unavailable"},
		{env.Registry + "/fixtures/no-such-base:1", exitInvalid, "does not exist"},
		{env.BaseBusybox + "-no-such-tag", exitInvalid, "does not exist"},
	} {
		t.Run(tc.base, func(t *testing.T) {
			dir := writeFiles(t, map[string]string{
				"spec.yaml": fmt.Sprintf("name: e2e-base-%d\nregistry: %s/cli\nbase_image: %s\ncommands: [\"true\"]\n", time.Now().UnixNano(), env.Registry, tc.base),
			})
			s := filepath.Join(dir, "spec.yaml")
			tagOut, _, _ := run(t, "tag", s)
			ref := strings.TrimSpace(tagOut)
			out, errOut, code := runProc(t, "build", "--json", "--progress", "quiet", s)
			if code != tc.code || !strings.Contains(errOut, "base image "+tc.base) || !strings.Contains(errOut, tc.want) {
				t.Errorf("build: exit %d, stderr %q; want %d and %q", code, errOut, tc.code, tc.want)
			}
			var rec buildResult
			if err := json.Unmarshal([]byte(out), &rec); err != nil || rec.Error == nil || exitCodeOfClass(rec.Error.Class) != tc.code {
				t.Errorf("build --json printed %q", out)
			}
			assertNothingPushed(t, env, ref)
			if _, errOut, code := runProc(t, "lock", s); code != tc.code {
				t.Errorf("lock: exit %d, want %d as build (%s)", code, tc.code, errOut)
			}
			if _, err := os.Stat(s + ".lock"); err == nil {
				t.Error("lock wrote a lock file")
			}
		})
	}
}

// exitCodeOfClass is the exit code of an error class.
func exitCodeOfClass(class string) int {
	switch class {
	case classInvalid:
		return exitInvalid
	case classUnavailable:
		return exitUnavailable
	}
	return exitFailed
}

package main

import (
	"bytes"
	"errors"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
)

// runOnTerminal runs the built CLI with its stderr on a pseudo-terminal (as
// a user's shell gives it) and its stdout on a pipe, and returns both.
func runOnTerminal(t *testing.T, args ...string) (stdout, terminal string, code int) {
	t.Helper()
	bin, err := ispecBinary()
	if err != nil {
		t.Fatalf("building ispec: %v", err)
	}
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatalf("opening a pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	if err := pty.Setsize(tty, &pty.Winsize{Rows: 40, Cols: 120}); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, tty
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close() // the child holds its own copy
	read := make(chan []byte, 1)
	go func() {
		b, err := io.ReadAll(ptmx)
		// Linux reports EIO on the terminal's side once the child has
		// closed its end: that is the end of the output.
		if err != nil && !errors.Is(err, syscall.EIO) {
			t.Errorf("reading the terminal: %v", err)
		}
		read <- b
	}()
	var term []byte
	select {
	case term = <-read:
	case <-time.After(5 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("ispec %s did not end within 5 minutes", strings.Join(args, " "))
	}
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), string(term), code
}

// On a terminal, --progress tty and auto show BuildKit's live view (cursor
// movement, the "[+] Building ... FINISHED" header), and the reference
// still goes to stdout alone.
func TestProgressOnATerminal(t *testing.T) {
	env := e2e(t)
	for _, mode := range []string{"tty", "auto"} {
		t.Run(mode, func(t *testing.T) {
			s := uniqueSpec(t, env, "commands: [\"echo "+mode+" > /mode.txt\"]\n")
			stdout, term, code := runOnTerminal(t, "build", "--progress", mode, s)
			if code != 0 {
				t.Fatalf("exit %d; terminal:\n%s", code, term)
			}
			if strings.Contains(term, "failed to get console") {
				t.Fatalf("no console:\n%s", term)
			}
			for _, want := range []string{"\x1b[", "[+] Building", "FINISHED", "echo " + mode} {
				if !strings.Contains(term, want) {
					t.Errorf("the terminal shows no %q; it shows:\n%q", want, term)
				}
			}
			if !strings.Contains(stdout, "@sha256:") || strings.Contains(stdout, "\x1b[") {
				t.Errorf("stdout = %q, want the reference alone", stdout)
			}
		})
	}
}

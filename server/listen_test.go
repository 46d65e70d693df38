package server

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// shortDir is a temporary folder with a path short enough for a socket.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

func TestListenUnixIsOwnerOnly(t *testing.T) {
	// A permissive umask must not widen the socket's mode.
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	path := filepath.Join(shortDir(t), "ispec.sock")
	l, err := Listen("unix://" + path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode()&os.ModeSocket == 0 || st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want a socket of mode 0600", st.Mode())
	}
	if a, ok := l.Addr().(*net.UnixAddr); !ok || a.Name != path {
		t.Errorf("Addr = %v, want the socket's path", l.Addr())
	}
	// Nothing else is left in the folder.
	if ents, _ := os.ReadDir(filepath.Dir(path)); len(ents) != 1 {
		t.Errorf("folder holds %d entries, want the socket only", len(ents))
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if c, err := l.Accept(); err == nil {
			c.Close()
		}
	}()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.Close()
	<-done
	if _, err := Listen("unix://" + path); err == nil || !strings.Contains(err.Error(), "another server listens") {
		t.Errorf("a second server on the same socket: %v", err)
	}
	l.Close()
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Errorf("the socket outlives its listener: %v", err)
	}
}

func TestListenUnixReplacesAStaleSocket(t *testing.T) {
	path := filepath.Join(shortDir(t), "ispec.sock")
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close() // as a server killed with -9 leaves it
	l, err := Listen("unix:" + path)
	if err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	l.Close()
}

func TestListenUnixLeavesOtherFilesAlone(t *testing.T) {
	path := filepath.Join(shortDir(t), "notes.txt")
	os.WriteFile(path, []byte("keep me"), 0o644)
	if _, err := Listen("unix://" + path); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("err = %v, want not a socket", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "keep me" {
		t.Error("the file was touched")
	}
	if _, err := Listen("unix://"); err == nil {
		t.Error("an empty path was accepted")
	}
}

package testenv

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// RegistryOptions configures StartRegistry.
type RegistryOptions struct {
	// Username and Password, when Username is set, protect the registry
	// with htpasswd (basic) authentication.
	Username, Password string
}

// Registry is a running CNCF distribution registry.
type Registry struct {
	// Host is "127.0.0.1:PORT"; loopback, so clients use plain HTTP.
	Host string
	// LogPath is the file holding the registry's output.
	LogPath string
}

// registryBinary is the Debian package's name for the distribution registry.
const registryBinary = "docker-registry"

// StartRegistry starts the distribution registry (`docker-registry serve`)
// on a free loopback port with storage in a temporary directory, waits
// until it answers /v2/, and stops it when the test ends. Without the
// binary the test is skipped, or fails when CI=true.
func StartRegistry(t testing.TB, opts RegistryOptions) *Registry {
	t.Helper()
	External(t)
	bin, err := exec.LookPath(registryBinary)
	if err != nil {
		Missing(t, "%s not found on PATH (Debian: apt-get install docker-registry)", registryBinary)
	}
	dir := t.TempDir()
	host, err := freeLoopbackAddr()
	if err != nil {
		t.Fatalf("finding a free port: %v", err)
	}
	auth := ""
	if opts.Username != "" {
		hash, err := bcrypt.GenerateFromPassword([]byte(opts.Password), bcrypt.MinCost)
		if err != nil {
			t.Fatalf("hashing password: %v", err)
		}
		htpasswd := filepath.Join(dir, "htpasswd")
		if err := os.WriteFile(htpasswd, []byte(opts.Username+":"+string(hash)+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: ispec-test\n    path: %s\n", htpasswd)
	}
	config := fmt.Sprintf(`version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: %s
%s`, filepath.Join(dir, "storage"), host, auth)
	configPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "registry.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", configPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), "OTEL_TRACES_EXPORTER=none")
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("starting %s: %v", registryBinary, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		logFile.Close()
	})

	r := &Registry{Host: host, LogPath: logPath}
	if err := waitReady(host, exited, 15*time.Second); err != nil {
		out, _ := os.ReadFile(logPath)
		t.Fatalf("registry did not start: %v\n%s", err, tail(string(out), 2000))
	}
	return r
}

// freeLoopbackAddr returns a 127.0.0.1 address with a port free right now.
func freeLoopbackAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// waitReady polls /v2/ until it answers 200 or 401.
func waitReady(host string, exited <-chan error, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/v2/", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
		}
		select {
		case err := <-exited:
			return fmt.Errorf("registry exited: %v", err)
		case <-ctx.Done():
			return fmt.Errorf("no answer from http://%s/v2/ within %s", host, timeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[strings.LastIndexByte(s[:len(s)-n], '\n')+1:]
}

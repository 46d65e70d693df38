package validate

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestCertScript runs deploy/tls/buildkit-certs.sh and checks that what it
// makes works as the manifests use it: ispec, with the client certificate,
// completes a mutual TLS handshake with a daemon of the pool addressed by
// its headless Service name; another name or a missing client certificate
// does not.
func TestCertScript(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("openssl is needed to test deploy/tls/buildkit-certs.sh")
		}
		t.Skip("no openssl")
	}
	out := filepath.Join(t.TempDir(), "certs")
	cmd := exec.Command("bash", filepath.Join("..", "tls", "buildkit-certs.sh"), out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("buildkit-certs.sh: %v\n%s", err, b)
	}
	load := func(side string) (tls.Certificate, *x509.CertPool) {
		t.Helper()
		dir := filepath.Join(out, side)
		pair, err := tls.LoadX509KeyPair(filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key"))
		if err != nil {
			t.Fatal(err)
		}
		ca, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			t.Fatalf("%s/ca.crt holds no certificate", side)
		}
		return pair, pool
	}
	daemonCert, daemonCA := load("daemon")
	clientCert, clientCA := load("client")
	handshake := func(serverName string, withCert bool) error {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		_ = a.SetDeadline(time.Now().Add(10 * time.Second))
		_ = b.SetDeadline(time.Now().Add(10 * time.Second))
		// What buildkitd does with --tlscacert, --tlscert, --tlskey.
		srv := tls.Server(a, &tls.Config{Certificates: []tls.Certificate{daemonCert}, ClientCAs: daemonCA,
			ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12})
		cfg := &tls.Config{RootCAs: clientCA, ServerName: serverName, MinVersion: tls.VersionTLS12}
		if withCert {
			cfg.Certificates = []tls.Certificate{clientCert}
		}
		done := make(chan error, 1)
		go func() {
			err := srv.Handshake()
			if err == nil {
				_, err = srv.Write([]byte{1})
			}
			done <- err
		}()
		cli := tls.Client(b, cfg)
		errCli := cli.Handshake()
		if errCli == nil {
			// TLS 1.3 reports a refused client certificate on the first
			// read; an accepted one reads the daemon's byte.
			_, errCli = cli.Read(make([]byte, 1))
		}
		b.Close()
		errSrv := <-done
		if errCli != nil {
			return errCli
		}
		return errSrv
	}
	for _, name := range []string{"buildkitd-0.buildkitd.ispec-buildkit.svc", "buildkitd-2.buildkitd.ispec-buildkit.svc.cluster.local"} {
		if err := handshake(name, true); err != nil {
			t.Errorf("ispec to %s: %v", name, err)
		}
	}
	if err := handshake("buildkitd-0.other.ispec-buildkit.svc", true); err == nil {
		t.Error("the daemon certificate fits a name outside the pool's Service")
	}
	if err := handshake("buildkitd-0.buildkitd.ispec-buildkit.svc", false); err == nil {
		t.Error("a client without a certificate got through")
	}
}

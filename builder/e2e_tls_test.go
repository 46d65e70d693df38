package builder

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ispec-dev/ispec/internal/testenv"
)

// freeTCPAddr returns a loopback address no one listens on at the moment.
func freeTCPAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// TestE2EMutualTLS builds on a real buildkitd that listens with
// --tlscacert, --tlscert and --tlskey (as the Kubernetes pool does): with
// ispec's client certificate the image is built and pushed; without one,
// or with a certificate of another CA, the daemon is unavailable.
func TestE2EMutualTLS(t *testing.T) {
	env := loadDevEnv(t)
	dir := t.TempDir()
	ca := newTestCA(t)
	caFile := filepath.Join(dir, "ca.crt")
	writeFile(t, caFile, ca.pem)
	srvCert, srvKey := ca.issue(t, dir, "buildkitd", x509.ExtKeyUsageServerAuth, net.ParseIP("127.0.0.1"))
	cliCert, cliKey := ca.issue(t, dir, "ispec", x509.ExtKeyUsageClientAuth)
	addr := "tcp://" + freeTCPAddr(t)
	env.StartBuildkitd(t, "--addr", addr, "--tlscacert", caFile, "--tlscert", srvCert, "--tlskey", srvKey)
	ctx := context.Background()

	b, err := New(ctx, Options{Addr: addr, Version: "e2e", TLS: TLS{CACert: caFile, Cert: cliCert, Key: cliKey}})
	if err != nil {
		t.Fatalf("New over mutual TLS: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	repo := fmt.Sprintf("e2e-builder-tls-%d", time.Now().UnixNano())
	doc := fmt.Sprintf("name: tls\nregistry: %s/%s\nbase_image: %s\ncommands:\n  - \"echo over-tls > /tls.txt\"\n", env.Registry, repo, env.BaseBusybox)
	res, _, err := build(t, b, loadSpec(t, doc, nil))
	if err != nil {
		t.Fatalf("build over mutual TLS: %v", err)
	}
	got, ok := testenv.ImageFile(t, testenv.Pull(t, res.Ref+"@"+res.Digest), "tls.txt")
	if !ok || strings.TrimSpace(got) != "over-tls" {
		t.Errorf("/tls.txt = %q (found %v), want over-tls", got, ok)
	}

	other := newTestCA(t)
	otherDir := t.TempDir()
	otherCert, otherKey := other.issue(t, otherDir, "intruder", x509.ExtKeyUsageClientAuth)
	for name, tlsOpts := range map[string]TLS{
		"plain":                 {},
		"no client certificate": {CACert: caFile},
		"another CA's client":   {CACert: caFile, Cert: otherCert, Key: otherKey},
	} {
		b, err := New(ctx, Options{Addr: addr, TLS: tlsOpts, DialTimeout: 3 * time.Second})
		if err == nil {
			b.Close()
			t.Errorf("%s: connected to a daemon that demands ispec's certificate", name)
			continue
		}
		var ue *UnavailableError
		if !errors.As(err, &ue) {
			t.Errorf("%s: want an *UnavailableError, got %T: %v", name, err, err)
		}
	}
}

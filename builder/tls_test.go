package builder

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	controlapi "github.com/moby/buildkit/api/services/control"
	types "github.com/moby/buildkit/api/types"
	"github.com/moby/buildkit/solver/pb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// testCA issues certificates for the TLS tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue writes a certificate and key for cn (a server when ips are given)
// into dir and returns their paths.
func (ca *testCA) issue(t *testing.T, dir, cn string, usage x509.ExtKeyUsage, ips ...net.IP) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, cn+".crt"), filepath.Join(dir, cn+".key")
	writeFile(t, certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	writeFile(t, keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))
	return certFile, keyFile
}

func writeFile(t *testing.T, p string, data []byte) {
	t.Helper()
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// fakeDaemon answers ListWorkers like buildkitd started with --tlscacert,
// --tlscert and --tlskey: only callers with a client certificate of the
// CA get through. It records their certificates' names.
type fakeDaemon struct {
	controlapi.UnimplementedControlServer
	mu      sync.Mutex
	callers []string
}

func (d *fakeDaemon) ListWorkers(ctx context.Context, _ *controlapi.ListWorkersRequest) (*controlapi.ListWorkersResponse, error) {
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok && len(ti.State.PeerCertificates) > 0 {
			d.mu.Lock()
			d.callers = append(d.callers, ti.State.PeerCertificates[0].Subject.CommonName)
			d.mu.Unlock()
		}
	}
	return &controlapi.ListWorkersResponse{Record: []*types.WorkerRecord{{
		ID: "w0", Platforms: []*pb.Platform{{OS: "linux", Architecture: "amd64"}},
	}}}, nil
}

func (d *fakeDaemon) seen() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.callers...)
}

// startDaemon serves d over mutual TLS with a server certificate of ca
// and returns its tcp:// address.
func startDaemon(t *testing.T, ca *testCA, serverCert, serverKey string, d *fakeDaemon) string {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(serverCert, serverKey)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.cert)
	creds := credentials.NewTLS(&tls.Config{
		Certificates: []tls.Certificate{pair}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert,
	})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.Creds(creds))
	controlapi.RegisterControlServer(s, d)
	go s.Serve(lis)
	t.Cleanup(s.Stop)
	return "tcp://" + lis.Addr().String()
}

func TestNewMutualTLS(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	caFile := filepath.Join(dir, "ca.crt")
	writeFile(t, caFile, ca.pem)
	srvCert, srvKey := ca.issue(t, dir, "buildkitd", x509.ExtKeyUsageServerAuth, net.ParseIP("127.0.0.1"))
	cliCert, cliKey := ca.issue(t, dir, "ispec", x509.ExtKeyUsageClientAuth)
	d := &fakeDaemon{}
	addr := startDaemon(t, ca, srvCert, srvKey, d)
	ctx := context.Background()

	t.Run("client certificate", func(t *testing.T) {
		b, err := New(ctx, Options{Addr: addr, TLS: TLS{CACert: caFile, Cert: cliCert, Key: cliKey}})
		if err != nil {
			t.Fatalf("New over mutual TLS: %v", err)
		}
		defer b.Close()
		if got := d.seen(); len(got) == 0 || got[len(got)-1] != "ispec" {
			t.Errorf("daemon saw callers %v, want the client certificate ispec", got)
		}
	})
	refused := []struct {
		name string
		tls  TLS
	}{
		{"plain connection", TLS{}},
		{"no client certificate", TLS{CACert: caFile}},
		{"server name not in its certificate", TLS{CACert: caFile, Cert: cliCert, Key: cliKey, ServerName: "buildkitd.example"}},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			b, err := New(ctx, Options{Addr: addr, TLS: tc.tls, DialTimeout: 2 * time.Second})
			if err == nil {
				b.Close()
				t.Fatal("connected; want a refusal")
			}
			var ue *UnavailableError
			if !errors.As(err, &ue) {
				t.Errorf("want an *UnavailableError, got %T: %v", err, err)
			}
		})
	}
	t.Run("another CA", func(t *testing.T) {
		other := newTestCA(t)
		otherDir := t.TempDir()
		otherCA := filepath.Join(otherDir, "ca.crt")
		writeFile(t, otherCA, other.pem)
		c, k := other.issue(t, otherDir, "intruder", x509.ExtKeyUsageClientAuth)
		b, err := New(ctx, Options{Addr: addr, TLS: TLS{CACert: caFile, Cert: c, Key: k}, DialTimeout: 2 * time.Second})
		if err == nil {
			b.Close()
			t.Fatal("a certificate of another CA connected")
		}
		for _, cn := range d.seen() {
			if cn == "intruder" {
				t.Error("the daemon served a caller of another CA")
			}
		}
	})
}

func TestTLSCheck(t *testing.T) {
	dir := t.TempDir()
	ca := newTestCA(t)
	caFile := filepath.Join(dir, "ca.crt")
	writeFile(t, caFile, ca.pem)
	cert, key := ca.issue(t, dir, "ispec", x509.ExtKeyUsageClientAuth)
	notPEM := filepath.Join(dir, "notes.txt")
	writeFile(t, notPEM, []byte("not a certificate\n"))
	cases := []struct {
		name    string
		tls     TLS
		setting string
	}{
		{"cert without key", TLS{CACert: caFile, Cert: cert}, "key"},
		{"key without cert", TLS{CACert: caFile, Key: key}, "cert"},
		{"missing CA file", TLS{CACert: filepath.Join(dir, "nope.crt")}, "ca"},
		{"CA not PEM", TLS{CACert: notPEM}, "ca"},
		{"key of another certificate", TLS{CACert: caFile, Cert: cert, Key: caFile}, "cert"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(context.Background(), Options{Addr: "tcp://127.0.0.1:1", TLS: tc.tls})
			var te *TLSConfigError
			if !errors.As(err, &te) || !errors.Is(err, ErrTLSConfig) {
				t.Fatalf("want a *TLSConfigError, got %T: %v", err, err)
			}
			if te.Setting != tc.setting {
				t.Errorf("setting %q, want %q (%v)", te.Setting, tc.setting, err)
			}
		})
	}
	if err := (TLS{CACert: caFile, Cert: cert, Key: key}).Check(); err != nil {
		t.Errorf("valid settings: %v", err)
	}
	if (TLS{}).Enabled() || !(TLS{CACert: caFile}).Enabled() {
		t.Error("Enabled: only the zero value is a plain connection")
	}
}

package server_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"

	apiv1 "github.com/ispec-dev/ispec/api/ispec/v1"
	"github.com/ispec-dev/ispec/cache"
	"github.com/ispec-dev/ispec/ensure"
	"github.com/ispec-dev/ispec/server"
)

// noRegistry answers every lookup "unknown": these tests never reach one.
type noRegistry struct{}

func (noRegistry) Lookup(_ context.Context, ref name.Tag) cache.Result {
	return cache.Result{Ref: ref, Err: &cache.UnknownError{Ref: ref.Name(), Reason: cache.ReasonNetwork, Message: "no registry in this test"}}
}

// certs is a CA and certificates it signed.
type certs struct {
	pool   *x509.CertPool
	server tls.Certificate
	client tls.Certificate
	other  tls.Certificate // signed by another CA
}

func newCerts(t *testing.T) certs {
	t.Helper()
	ca, caKey := newCA(t, "ispec test CA")
	other, otherKey := newCA(t, "another CA")
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return certs{
		pool:   pool,
		server: leaf(t, ca, caKey, "server", x509.ExtKeyUsageServerAuth),
		client: leaf(t, ca, caKey, "ci-runner", x509.ExtKeyUsageClientAuth),
		other:  leaf(t, other, otherKey, "intruder", x509.ExtKeyUsageClientAuth),
	}
}

func newCA(t *testing.T, cn string) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

func leaf(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, cn string, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestClientCertificatesAuthenticate(t *testing.T) {
	c := newCerts(t)
	p, err := ensure.New(ensure.WithLookup(noRegistry{}))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(p, noRegistry{}, server.WithUploadDir(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	creds := credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{c.server}, ClientCAs: c.pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12})
	a, err := server.NewAuth(server.WithClientCertificates())
	if err != nil {
		t.Fatal(err)
	}
	gs, _, err := srv.GRPC(a, nil, creds)
	if err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go gs.Serve(lis)
	defer gs.Stop()

	call := func(certs []tls.Certificate) error {
		conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: c.pool, Certificates: certs, MinVersion: tls.VersionTLS12})))
		if err != nil {
			return err
		}
		defer conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := apiv1.NewImageServiceClient(conn).Resolve(ctx, &apiv1.ResolveRequest{Input: &apiv1.SpecInput{SpecPath: "spec.yaml", Spec: []byte("name: app\nregistry: r.example\n")}})
		if err == nil && !strings.HasPrefix(resp.GetImage().GetRef(), "r.example/app:") {
			t.Errorf("resolve = %v", resp)
		}
		return err
	}
	if err := call([]tls.Certificate{c.client}); err != nil {
		t.Errorf("a client certificate from the CA: %v", err)
	}
	for name, certs := range map[string][]tls.Certificate{"no certificate": nil, "another CA's": {c.other}} {
		if err := call(certs); err == nil || status.Code(err) == codes.OK {
			t.Errorf("%s: the call went through", name)
		}
	}
}

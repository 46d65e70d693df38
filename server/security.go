package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"google.golang.org/grpc/credentials"
)

// security returns who may call (tokens, client certificates) and the
// transport credentials (nil: plain text) Config asks for.
func (cfg Config) security() (*Auth, credentials.TransportCredentials, error) {
	creds, err := cfg.TLS.credentials()
	if err != nil {
		return nil, nil, err
	}
	var opts []AuthOption
	if cfg.TokenFile != "" {
		tf, err := OpenTokenFile(cfg.TokenFile, cfg.TokenFileOptions...)
		if err != nil {
			return nil, nil, &ConfigError{Err: err}
		}
		opts = append(opts, WithTokenFile(tf))
	}
	if cfg.TLS.ClientCA != "" {
		opts = append(opts, WithClientCertificates())
	}
	authn, err := NewAuth(append(opts, WithAuthLogger(cfg.Logger))...)
	if err != nil {
		return nil, nil, err
	}
	return authn, creds, nil
}

// credentials returns the server's transport credentials; nil for plain
// text.
func (f TLSFiles) credentials() (credentials.TransportCredentials, error) {
	if f.Cert == "" && f.Key == "" {
		if f.ClientCA != "" {
			return nil, &ConfigError{Err: errors.New("client-ca needs tls-cert and tls-key")}
		}
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, &ConfigError{Setting: "tls-cert/tls-key", Err: err}
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if f.ClientCA != "" {
		pem, err := os.ReadFile(f.ClientCA)
		if err != nil {
			return nil, &ConfigError{Setting: "client-ca", Err: err}
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, &ConfigError{Err: fmt.Errorf("client-ca %s: no PEM certificate", f.ClientCA)}
		}
		tc.ClientCAs, tc.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return credentials.NewTLS(tc), nil
}

package builder

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/moby/buildkit/client"
)

// TLS names the files that secure a tcp:// connection to BuildKit, the
// client side of buildkitd's --tlscacert, --tlscert and --tlskey (what
// buildctl's --tlscacert, --tlscert, --tlskey and buildx's cacert, cert
// and key driver options name). The zero value is a plain connection.
type TLS struct {
	// CACert is the CA (PEM) that signed buildkitd's certificate. Empty:
	// the system's roots.
	CACert string
	// Cert and Key are the client certificate and key (PEM) that
	// buildkitd's --tlscacert verifies (mutual TLS). Both or neither.
	Cert, Key string
	// ServerName is the name buildkitd's certificate must carry. Empty:
	// the host of the address, so each daemon of a pool is checked
	// against its own name.
	ServerName string
}

// Enabled reports whether any TLS setting is given.
func (t TLS) Enabled() bool { return t != TLS{} }

// ErrTLSConfig marks TLS settings for BuildKit that cannot work: a
// certificate without its key, an unreadable file, a file that holds no
// PEM certificate.
var ErrTLSConfig = errors.New("buildkit TLS settings")

// TLSConfigError is one TLS setting for BuildKit that cannot work.
type TLSConfigError struct {
	// Setting is the field at fault: "ca", "cert" or "key".
	Setting string
	// File is the file named by it (empty when it is missing).
	File string
	// Err is what is wrong.
	Err error
}

// Error implements error.
func (e *TLSConfigError) Error() string {
	if e.File == "" {
		return fmt.Sprintf("buildkit TLS %s: %v", e.Setting, e.Err)
	}
	return fmt.Sprintf("buildkit TLS %s %s: %v", e.Setting, e.File, e.Err)
}

// Unwrap returns ErrTLSConfig and the underlying error.
func (e *TLSConfigError) Unwrap() []error { return []error{ErrTLSConfig, e.Err} }

// Check reads the files t names and reports the first that cannot work,
// as a *TLSConfigError, before a connection is tried: BuildKit's client
// would only say that it cannot connect.
func (t TLS) Check() error {
	switch {
	case t.Cert != "" && t.Key == "":
		return &TLSConfigError{Setting: "key", Err: fmt.Errorf("missing: the client certificate %s needs its key", t.Cert)}
	case t.Key != "" && t.Cert == "":
		return &TLSConfigError{Setting: "cert", Err: fmt.Errorf("missing: the client key %s needs its certificate", t.Key)}
	}
	if t.CACert != "" {
		pem, err := os.ReadFile(t.CACert)
		if err != nil {
			return &TLSConfigError{Setting: "ca", File: t.CACert, Err: err}
		}
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return &TLSConfigError{Setting: "ca", File: t.CACert, Err: errors.New("no PEM certificate in it")}
		}
	}
	if t.Cert != "" {
		if _, err := tls.LoadX509KeyPair(t.Cert, t.Key); err != nil {
			return &TLSConfigError{Setting: "cert", File: t.Cert, Err: fmt.Errorf("with key %s: %w", t.Key, err)}
		}
	}
	return nil
}

// clientOpts turns t into BuildKit client options; none when t is zero.
func (t TLS) clientOpts() []client.ClientOpt {
	if !t.Enabled() {
		return nil
	}
	var opts []client.ClientOpt
	if t.CACert != "" {
		opts = append(opts, client.WithServerConfig(t.ServerName, t.CACert))
	} else {
		opts = append(opts, client.WithServerConfigSystem(t.ServerName))
	}
	if t.Cert != "" {
		opts = append(opts, client.WithCredentials(t.Cert, t.Key))
	}
	return opts
}

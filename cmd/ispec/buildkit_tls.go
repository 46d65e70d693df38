package main

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/ispec-dev/ispec/builder"
)

// addBuildkitTLSFlags adds the flags that secure a tcp:// connection to
// BuildKit with mutual TLS: the client side of buildkitd's --tlscacert,
// --tlscert and --tlskey.
func addBuildkitTLSFlags(fl *pflag.FlagSet) {
	fl.String("buildkit-ca", "", "CA certificate (PEM) that signed BuildKit's server certificate; setting it, or a client certificate, turns TLS on (env ISPEC_BUILDKIT_CA)")
	fl.String("buildkit-cert", "", "client certificate (PEM) presented to BuildKit (buildkitd --tlscacert verifies it), with --buildkit-key (env ISPEC_BUILDKIT_CERT)")
	fl.String("buildkit-key", "", "key (PEM) of --buildkit-cert (env ISPEC_BUILDKIT_KEY)")
}

// checkBuildkitTLS reads the files of the BuildKit TLS settings and names
// the setting at fault, so that a typo fails at start (exit 2) rather than
// as an unreachable daemon at the first build.
func checkBuildkitTLS(t builder.TLS) error {
	err := t.Check()
	var te *builder.TLSConfigError
	if errors.As(err, &te) {
		where := "buildkit-" + te.Setting
		if te.File != "" {
			where += " " + te.File
		}
		return usageError{fmt.Errorf("%s: %w", where, te.Err)}
	}
	return err
}

package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/ispec-dev/ispec/builder"
	"github.com/ispec-dev/ispec/ensure"
)

// Exit codes, documented in `ispec --help` and the README.
const (
	exitOK          = 0 // success; the image exists
	exitAbsent      = 1 // `exists`: an image is absent; `lock --check`: drift
	exitFailed      = 1 // a build failed
	exitInvalid     = 2 // invalid spec or usage
	exitUnavailable = 3 // registry or builder unavailable, or a platform the builder cannot build
)

const exitCodesHelp = `Exit codes:
  0  success (for exists: every image exists)
  1  exists: an image is absent; lock --check: the lock has drifted;
     diff: the tags differ; build: a build step failed
  2  invalid spec or usage
  3  registry or BuildKit unavailable (the error says which), or BuildKit's
     workers cannot build a platform the spec asks for`

// exitError carries an exit code. With a nil err nothing more is printed:
// the command already reported what it found.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// usageError marks a mistake in how the command was called.
type usageError struct{ error }

func (e usageError) Unwrap() error { return e.error }

// exitCodes maps the pipeline's error classes to exit codes; the server
// maps the same classes to gRPC status codes.
var exitCodes = [...]int{
	ensure.ClassInternal:    exitFailed,
	ensure.ClassInvalid:     exitInvalid,
	ensure.ClassUnavailable: exitUnavailable,
	ensure.ClassFailed:      exitFailed,
	ensure.ClassBusy:        exitUnavailable,
	ensure.ClassDenied:      exitUnavailable,
	ensure.ClassCanceled:    exitFailed,
	ensure.ClassTimeout:     exitUnavailable,
	ensure.ClassNotFound:    exitInvalid,
}

func exitCode(err error) int {
	var ee *exitError
	var ue usageError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue):
		return exitInvalid
	}
	if c := ensure.ClassOf(err); int(c) < len(exitCodes) {
		return exitCodes[c]
	}
	return exitFailed
}

// reportError prints err, and the CLI's hint for it, on w.
func reportError(w io.Writer, err error) {
	fmt.Fprintln(w, "ispec:", err)
	if h := hint(err); h != "" {
		fmt.Fprintln(w, "ispec: hint:", h)
	}
}

// hint is the CLI's advice for an error, or "": the libraries' errors say
// what went wrong, the CLI says which of its settings to change.
func hint(err error) string {
	var bk *builder.UnavailableError
	if errors.As(err, &bk) {
		return fmt.Sprintf("start buildkitd at %s, or point ispec at a running one with --buildkit-addr or BUILDKIT_HOST (unix:///path/buildkitd.sock, tcp://host:port, docker-container://name)", bk.Addr)
	}
	return ""
}

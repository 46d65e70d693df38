package main

import (
	"errors"
	"fmt"
	"os"
	"syscall"

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
	// An interrupted command exits 128 + the signal's number, as shells
	// report a process a signal ended: 130 for SIGINT, 143 for SIGTERM.
	exitSignalBase = 128
)

const exitCodesHelp = `Exit codes:
  0    success (for exists: every image exists)
  1    exists: an image is absent; lock --check: the lock has drifted;
       diff: the tags differ; build: a build step failed
  2    invalid spec or usage (also: a base image the registry does not have,
       a cache dir that is not a folder, an unknown command, flag or
       config file key)
  3    registry or BuildKit unavailable (the error says which), including
       the registry of a base image; or BuildKit's workers cannot build a
       platform the spec asks for
  130  interrupted by SIGINT (Ctrl-C); 143: by SIGTERM. Nothing is pushed
       unless the push had already finished`

// Error classes: the "class" of the JSON error records (build --json,
// --progress json) and what the exit code is made from.
const (
	classInvalid     = "invalid"
	classUnavailable = "unavailable"
	classFailed      = "failed"
	classInterrupted = "interrupted"
)

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

// interruptedError means a signal ended the command.
type interruptedError struct{ sig os.Signal }

func (e *interruptedError) Error() string { return "interrupted by " + signalName(e.sig) }

// signalName is a signal's conventional name.
func signalName(sig os.Signal) string {
	switch sig {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return sig.String()
}

// classes is the one table from the pipeline's error classes to the
// CLI's: the exit code and the class name of JSON error records. The
// server maps the same classes to gRPC status codes (package server).
var classes = [...]struct {
	code int
	name string
}{
	ensure.ClassInternal:    {exitFailed, classFailed},
	ensure.ClassInvalid:     {exitInvalid, classInvalid},
	ensure.ClassUnavailable: {exitUnavailable, classUnavailable},
	ensure.ClassFailed:      {exitFailed, classFailed},
	ensure.ClassBusy:        {exitUnavailable, classUnavailable},
	ensure.ClassDenied:      {exitUnavailable, classUnavailable},
	ensure.ClassCanceled:    {exitFailed, classInterrupted},
	ensure.ClassTimeout:     {exitUnavailable, classUnavailable},
	ensure.ClassNotFound:    {exitInvalid, classInvalid},
}

// cliClass is err's row of classes.
func cliClass(err error) (code int, name string) {
	var ue usageError
	if errors.As(err, &ue) {
		return exitInvalid, classInvalid
	}
	c := ensure.ClassOf(err)
	if int(c) >= len(classes) {
		return exitFailed, classFailed
	}
	return classes[c].code, classes[c].name
}

// errorClass sorts an error into one of the classes above.
func errorClass(err error) string {
	var ie *interruptedError
	if errors.As(err, &ie) {
		return classInterrupted
	}
	_, name := cliClass(err)
	return name
}

func exitCode(err error) int {
	var ee *exitError
	var ie *interruptedError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ie):
		if s, ok := ie.sig.(syscall.Signal); ok {
			return exitSignalBase + int(s)
		}
		return exitFailed
	}
	code, _ := cliClass(err)
	return code
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

// errorRecord is the JSON form of an error: in build --json records and,
// with --progress json, on stderr.
type errorRecord struct {
	// Spec is the spec file the error is about, in a run over several
	// specs' error objects on stderr; empty elsewhere.
	Spec    string `json:"spec,omitempty"`
	Class   string `json:"class"`
	Message string `json:"message"`
}

func newErrorRecord(err error) *errorRecord {
	return &errorRecord{Class: errorClass(err), Message: err.Error()}
}

package main

import (
	"errors"
	"os"
	"syscall"

	"github.com/ispec-dev/ispec/builder"
	"github.com/ispec-dev/ispec/spec"
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

// errorClass sorts an error into one of the classes above.
func errorClass(err error) string {
	var ie *interruptedError
	var ue usageError
	var be *builder.BaseError
	switch {
	case errors.As(err, &ie):
		return classInterrupted
	case errors.As(err, &ue), errors.Is(err, spec.ErrInvalid):
		return classInvalid
	case errors.As(err, &be):
		// The registry said the base does not exist: the spec names an
		// image nobody can build on, as lock says too.
		if be.Absent {
			return classInvalid
		}
		return classUnavailable
	case unavailable(err):
		return classUnavailable
	}
	return classFailed
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
	switch errorClass(err) {
	case classInvalid:
		return exitInvalid
	case classUnavailable:
		return exitUnavailable
	}
	return exitFailed
}

// errorRecord is the JSON form of an error: in build --json records and,
// with --progress json, on stderr.
type errorRecord struct {
	Class   string `json:"class"`
	Message string `json:"message"`
}

func newErrorRecord(err error) *errorRecord {
	return &errorRecord{Class: errorClass(err), Message: err.Error()}
}

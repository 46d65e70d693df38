package main

import (
	"errors"

	"github.com/ispec-dev/ispec/spec"
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

func exitCode(err error) int {
	var ee *exitError
	var ue usageError
	switch {
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue), errors.Is(err, spec.ErrInvalid):
		return exitInvalid
	}
	if unavailable(err) {
		return exitUnavailable
	}
	return exitFailed
}

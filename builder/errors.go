package builder

import (
	"errors"
	"fmt"
	"strings"

	gatewaypb "github.com/moby/buildkit/frontend/gateway/pb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// UnavailableError means BuildKit could not be reached. Retrying makes
// sense once a daemon is running at Addr.
type UnavailableError struct {
	// Addr is the BuildKit address that was tried.
	Addr string
	// Err is what went wrong.
	Err error
}

// Error implements error.
func (e *UnavailableError) Error() string {
	return fmt.Sprintf("buildkit is not reachable at %s: %v", e.Addr, e.Err)
}

// Unwrap returns the underlying error.
func (e *UnavailableError) Unwrap() error { return e.Err }

// StepError means one step of the recipe failed; nothing was pushed.
type StepError struct {
	// Step is the failing step's name, as progress shows it.
	Step string
	// Log is the tail of the step's output, at most LogTailLines lines.
	Log []string
	// Err is BuildKit's error.
	Err error
}

// LogTailLines is how many of a failed step's last log lines a StepError
// keeps.
const LogTailLines = 20

// Error implements error. It names the step and includes the log tail.
func (e *StepError) Error() string {
	var b strings.Builder
	var exit *gatewaypb.ExitError
	if errors.As(e.Err, &exit) {
		// BuildKit's own message repeats the whole command, which for the
		// recipe's fixed scripts says nothing the step name does not.
		fmt.Fprintf(&b, "step %q failed: exit code: %d", e.Step, exit.ExitCode)
	} else {
		fmt.Fprintf(&b, "step %q failed: %v", e.Step, e.Err)
	}
	if len(e.Log) > 0 {
		b.WriteString("\nlast lines of its log:")
		for _, l := range e.Log {
			b.WriteString("\n  ")
			b.WriteString(l)
		}
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *StepError) Unwrap() error { return e.Err }

// BaseError means the base image could not be resolved before any step
// ran. Absent says the registry answered that it has no such image (or
// none for the platform); otherwise the registry could not be asked:
// unreachable, unknown host, TLS, authentication or server errors.
type BaseError struct {
	// Base is the base image reference.
	Base string
	// Absent is true when the registry said the image does not exist.
	Absent bool
	// Err is BuildKit's error.
	Err error
}

// Error implements error.
func (e *BaseError) Error() string {
	msg := strings.TrimPrefix(e.Err.Error(), "failed to solve: ")
	if e.Absent {
		return fmt.Sprintf("base image %s does not exist: %s", e.Base, msg)
	}
	return fmt.Sprintf("base image %s: its registry is unavailable: %s", e.Base, msg)
}

// Unwrap returns the underlying error.
func (e *BaseError) Unwrap() error { return e.Err }

// resolvePrefix starts the name of the vertex that resolves a base image.
const resolvePrefix = "[ispec] resolve "

// baseError classifies the failure of the vertex that resolved base.
func baseError(base string, err error) *BaseError {
	msg := err.Error()
	absent := status.Code(errors.Unwrap(err)) == codes.NotFound || status.Code(err) == codes.NotFound ||
		strings.HasSuffix(msg, ": not found") || strings.Contains(msg, "no match for platform in manifest")
	return &BaseError{Base: base, Absent: absent, Err: err}
}

// PushError means the image was built but could not be exported to the
// registry; no tag was written.
type PushError struct {
	// Ref is where the image was to be pushed.
	Ref string
	// Err is BuildKit's error.
	Err error
}

// Error implements error.
func (e *PushError) Error() string { return fmt.Sprintf("pushing %s: %v", e.Ref, e.Err) }

// Unwrap returns the underlying error.
func (e *PushError) Unwrap() error { return e.Err }

// PlatformError means BuildKit's workers cannot build for a platform the
// spec asks for. It is returned before any work starts. The spec is valid;
// another BuildKit (or this one with QEMU emulators) can build it.
type PlatformError struct {
	// Platform is the unsupported platform.
	Platform string
	// Supported are the platforms the workers can build for.
	Supported []string
}

// Error implements error.
func (e *PlatformError) Error() string {
	return fmt.Sprintf("platform %s is not supported by the buildkit workers (they build for %s); install QEMU emulators (binfmt) on the buildkit host, use a buildkit whose workers build for it, or drop the platform from the spec", e.Platform, strings.Join(e.Supported, ", "))
}

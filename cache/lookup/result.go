// Package lookup holds the answer of a registry lookup (does this tag
// exist?) and why an answer is unknown, for callers that render or
// forward answers without linking the registry cache (its bbolt index
// and registry client); package cache names every type here under the
// same name (cache.Result is lookup.Result).
package lookup

import (
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// State is the answer to "does this tag exist?".
type State int

const (
	// Unknown means the registry could not be asked or gave no usable
	// answer. It is the zero value, so an unset State is never mistaken for
	// Exists.
	Unknown State = iota
	// Exists means the registry serves a manifest for the tag.
	Exists
	// Absent means the registry said the tag or its repository is not there.
	Absent
)

// String returns "unknown", "exists" or "absent".
func (s State) String() string {
	switch s {
	case Exists:
		return "exists"
	case Absent:
		return "absent"
	default:
		return "unknown"
	}
}

// MarshalText encodes the state as its String form.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Result is the answer of one lookup.
type Result struct {
	// Ref is the reference looked up, as given.
	Ref name.Tag
	// State is the answer.
	State State
	// Digest is the manifest digest; set when State is Exists.
	Digest v1.Hash
	// MediaType is the manifest media type when the registry said it.
	MediaType types.MediaType
	// FromIndex is true when the answer came from the local index, without
	// network.
	FromIndex bool
	// Message is the registry's own words for an Absent or Unknown answer,
	// such as "MANIFEST_UNKNOWN: manifest unknown".
	Message string
	// Err is set exactly when State is Unknown; it is an *UnknownError, or
	// the context's error when the lookup was not attempted.
	Err error
}

// Pinned returns "registry/repo:tag@digest" for an existing tag, or "" otherwise.
func (r Result) Pinned() string {
	if r.State != Exists {
		return ""
	}
	return r.Ref.Name() + "@" + r.Digest.String()
}

// Reason classifies why a lookup's answer is unknown.
type Reason string

const (
	// ReasonAuth: the registry refused the credentials or access (401, 403),
	// or credentials could not be obtained.
	ReasonAuth Reason = "auth"
	// ReasonRateLimited: the registry kept answering 429.
	ReasonRateLimited Reason = "rate limited"
	// ReasonUnavailable: the registry kept answering with a server error (5xx).
	ReasonUnavailable Reason = "unavailable"
	// ReasonTimeout: attempts ran out of time.
	ReasonTimeout Reason = "timeout"
	// ReasonNetwork: DNS, connection or TLS failure.
	ReasonNetwork Reason = "network"
	// ReasonMalformed: the registry answered something that is not a valid
	// manifest answer (for example no usable digest).
	ReasonMalformed Reason = "malformed answer"
	// ReasonRejected: the registry rejected the request for another reason
	// (another 4xx status, or /v2/ is not a registry API).
	ReasonRejected Reason = "rejected"
	// ReasonCanceled: the caller's context ended.
	ReasonCanceled Reason = "canceled"
	// ReasonOther: anything else.
	ReasonOther Reason = "error"
)

// UnknownError says why a lookup has no answer.
type UnknownError struct {
	// Ref is the reference looked up.
	Ref string
	// Reason classifies the failure.
	Reason Reason
	// Status is the HTTP status of the registry's last answer, 0 if none.
	Status int
	// Message is the registry's own message (or the network error's text).
	Message string
	// Temporary reports whether asking again later may succeed.
	Temporary bool
	// Attempts is how many attempts were made.
	Attempts int
	// Err is the underlying error.
	Err error
}

// Error returns "looking up REF: REASON: MESSAGE".
func (e *UnknownError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("looking up %s: %s (%d): %s", e.Ref, e.Reason, e.Status, e.Message)
	}
	return fmt.Sprintf("looking up %s: %s: %s", e.Ref, e.Reason, e.Message)
}

// Unwrap returns the underlying error.
func (e *UnknownError) Unwrap() error { return e.Err }

// AbsentError is returned by ResolvePlatforms when the registry said the
// reference or its repository does not exist.
type AbsentError struct {
	// Ref is the reference resolved.
	Ref string
	// Message is the registry's own message.
	Message string
}

// Error returns "REF not found: MESSAGE".
func (e *AbsentError) Error() string {
	return fmt.Sprintf("%s not found: %s", e.Ref, e.Message)
}

// PlatformError is returned by ResolvePlatforms when the image has no
// manifest for a requested platform.
type PlatformError struct {
	// Ref is the reference resolved.
	Ref string
	// Platform is the platform asked for.
	Platform v1.Platform
	// Available lists the platforms the image has.
	Available []v1.Platform
}

// Error names the missing platform and the available ones.
func (e *PlatformError) Error() string {
	avail := make([]string, len(e.Available))
	for i, p := range e.Available {
		avail[i] = p.String()
	}
	return fmt.Sprintf("%s has no manifest for platform %s (has %v)", e.Ref, e.Platform.String(), avail)
}

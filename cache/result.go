package cache

import "github.com/ispec-dev/ispec/cache/lookup"

// The answer of a lookup lives in package lookup, so that callers that
// only render answers (the gRPC client) do not link this package; cache
// names each type and constant under the same name.
type (
	// State is the answer to "does this tag exist?" (lookup.State).
	State = lookup.State
	// Result is the answer of one lookup (lookup.Result).
	Result = lookup.Result
	// Reason classifies why a lookup's answer is unknown (lookup.Reason).
	Reason = lookup.Reason
	// UnknownError says why a lookup has no answer (lookup.UnknownError).
	UnknownError = lookup.UnknownError
	// AbsentError: the registry said a reference does not exist (lookup.AbsentError).
	AbsentError = lookup.AbsentError
	// PlatformError: an image has no manifest for a platform (lookup.PlatformError).
	PlatformError = lookup.PlatformError
)

// States (see lookup).
const (
	Unknown = lookup.Unknown
	Exists  = lookup.Exists
	Absent  = lookup.Absent
)

// Reasons (see lookup).
const (
	ReasonAuth        = lookup.ReasonAuth
	ReasonRateLimited = lookup.ReasonRateLimited
	ReasonUnavailable = lookup.ReasonUnavailable
	ReasonTimeout     = lookup.ReasonTimeout
	ReasonNetwork     = lookup.ReasonNetwork
	ReasonMalformed   = lookup.ReasonMalformed
	ReasonRejected    = lookup.ReasonRejected
	ReasonCanceled    = lookup.ReasonCanceled
	ReasonOther       = lookup.ReasonOther
)

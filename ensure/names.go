package ensure

import "github.com/ispec-dev/ispec/ensure/call"

// The vocabulary of a call lives in package call, so that adapters (the
// gRPC client) use it without linking the pipeline; ensure names each
// type and constant under the same name. A Go caller of the pipeline
// needs only this package: ensure.Event and call.Event are one type.
type (
	// Kind says what an Event reports (call.Kind).
	Kind = call.Kind
	// Source says where a Found answer came from (call.Source).
	Source = call.Source
	// Event is one step of a call's progress (call.Event).
	Event = call.Event
	// Sink receives a call's events (call.Sink).
	Sink = call.Sink
	// Outcome says how a call got its image (call.Outcome).
	Outcome = call.Outcome
	// Result is an image that exists in its registry (call.Result).
	Result = call.Result
	// Request is what one call asks for besides the image (call.Request).
	Request = call.Request
	// Class is what kind of failure an error is (call.Class); ClassOf classifies an error.
	Class = call.Class
	// File is one file of an Upload (call.File).
	File = call.File
	// Blobs gives the content of files an upload names by digest (call.Blobs).
	Blobs = call.Blobs
	// Upload is a spec and every file it references, from memory (call.Upload).
	Upload = call.Upload
)

// Kind values (see call).
const (
	KindUnspecified = call.KindUnspecified
	KindAccepted    = call.KindAccepted
	KindJoined      = call.KindJoined
	KindWaiting     = call.KindWaiting
	KindFound       = call.KindFound
	KindBuilding    = call.KindBuilding
	KindProgress    = call.KindProgress
	KindPushed      = call.KindPushed
	KindDone        = call.KindDone
	KindFailed      = call.KindFailed
	KindWarning     = call.KindWarning
)

// Source values (see call).
const (
	SourceIndex    = call.SourceIndex
	SourceRegistry = call.SourceRegistry
)

// Outcome values (see call).
const (
	OutcomeUnspecified = call.OutcomeUnspecified
	OutcomeFound       = call.OutcomeFound
	OutcomeBuilt       = call.OutcomeBuilt
	OutcomeJoined      = call.OutcomeJoined
)

// Class values (see call).
const (
	ClassInternal    = call.ClassInternal
	ClassInvalid     = call.ClassInvalid
	ClassUnavailable = call.ClassUnavailable
	ClassFailed      = call.ClassFailed
	ClassBusy        = call.ClassBusy
	ClassDenied      = call.ClassDenied
	ClassCanceled    = call.ClassCanceled
	ClassTimeout     = call.ClassTimeout
	ClassNotFound    = call.ClassNotFound
)

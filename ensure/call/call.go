// Package call holds the vocabulary of a pipeline call (package ensure)
// that its adapters share without linking the pipeline: what a call asks
// for (Request), its events (Event), its result and outcome, the classes
// of its failures, and an upload of a spec with its files. The gRPC
// client uses it to speak the pipeline's language with no BuildKit,
// registry cache or server code; package ensure names every type here
// under the same name (ensure.Event is call.Event).
package call

import (
	"io"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ispec-dev/ispec/builder/progress"
)

// Kind says what an Event reports.
type Kind int

// Event kinds, in the order a build emits them. Found ends a call that
// needs no build; Done or Failed end every other.
const (
	// KindUnspecified is the zero value; no event has it.
	KindUnspecified Kind = iota
	// KindAccepted: this call started a build (Event.BuildID names it).
	KindAccepted
	// KindJoined: this call joined a build another caller started; the
	// events of that build follow from its start.
	KindJoined
	// KindWaiting: the tag's build lock is held by another build
	// (Event.Holder says which, where known).
	KindWaiting
	// KindFound: the image exists (Event.Source says where the answer
	// came from); nothing is built.
	KindFound
	// KindBuilding: BuildKit is building the image.
	KindBuilding
	// KindProgress: a BuildKit solve status (Event.Status).
	KindProgress
	// KindPushed: the image was pushed (Event.Digest).
	KindPushed
	// KindDone: the call's result (Event.Result).
	KindDone
	// KindFailed: the build failed (Event.Err).
	KindFailed
	// KindWarning: something the user should know that did not fail the
	// build (Event.Message), such as a registry cache that could not be
	// written.
	KindWarning
)

var kindNames = [...]string{"unspecified", "accepted", "joined", "waiting", "found", "building", "progress", "pushed", "done", "failed", "warning"}

// String returns the kind's lowercase name.
func (k Kind) String() string {
	if k < 0 || int(k) >= len(kindNames) {
		return "unspecified"
	}
	return kindNames[k]
}

// Source says where a Found answer came from.
type Source string

// Sources of a Found answer.
const (
	// SourceIndex: the local index of known images, without network.
	SourceIndex Source = "index"
	// SourceRegistry: the registry.
	SourceRegistry Source = "registry"
)

// Event is one step of a call's progress. Only the fields of its Kind are
// set.
type Event struct {
	// Kind says what happened.
	Kind Kind
	// Time is when it happened.
	Time time.Time
	// Ref is the image reference the event is about (a nested spec's
	// parent has its own).
	Ref string
	// BuildID names the build (Accepted, Joined, and every event of a
	// build).
	BuildID string
	// Source is where a Found answer came from.
	Source Source
	// Holder describes who holds the lock a Waiting call waits for.
	Holder string
	// Status is BuildKit's solve status (Progress). Shared between
	// watchers: never modify it.
	Status *progress.Status
	// Digest is the pushed or found manifest's digest.
	Digest v1.Hash
	// Fence is the fencing number of the tag's lease the build holds
	// (Building, Pushed), when the lock is a shared lease.
	Fence int64
	// Daemon is the BuildKit daemon that built the image (Pushed).
	Daemon string
	// Python is what each platform's image installed, for a spec whose
	// Python requirements float (Pushed; see Result.Python).
	Python map[string][]string
	// Result is the call's result (Done).
	Result *Result
	// Err is why the build failed (Failed).
	Err error
	// Message is a warning's text (Warning).
	Message string
}

// Sink receives a call's events, in order, from one goroutine at a time.
// It must not block for long: a build's events wait for it.
type Sink func(Event)

// Outcome says how a call got its image.
type Outcome int

// Outcomes of a call that succeeded.
const (
	// OutcomeUnspecified is the zero value.
	OutcomeUnspecified Outcome = iota
	// OutcomeFound: the image existed; nothing was built.
	OutcomeFound
	// OutcomeBuilt: this call built and pushed the image.
	OutcomeBuilt
	// OutcomeJoined: another caller's build of the same tag made it.
	OutcomeJoined
)

var outcomeNames = [...]string{"unspecified", "found", "built", "joined"}

// String returns "found", "built" or "joined".
func (o Outcome) String() string {
	if o < 0 || int(o) >= len(outcomeNames) {
		return "unspecified"
	}
	return outcomeNames[o]
}

// Result is an image that exists in its registry.
type Result struct {
	// Ref is where the image is.
	Ref name.Tag
	// Digest is its manifest's (or index's) digest.
	Digest v1.Hash
	// Outcome says whether it was found, built, or built by another caller.
	Outcome Outcome
	// Source says where a found image's answer came from.
	Source Source
	// BuildID names the build that made or checked it; empty when a
	// lookup alone found it.
	BuildID string
	// Output is the local file the image was written to (Export).
	Output string
	// Fence is the tag's fencing number of the lease the build ran under
	// (see Lease); 0 without a shared lease.
	Fence int64
	// Daemon is the BuildKit daemon that built it; empty when nothing
	// was built.
	Daemon string
	// Python is, for a spec whose Python requirements float, what each
	// platform's image installed when it was built (by platform, every
	// distribution as name==version, sorted); nil when the image was
	// found or its requirements are pinned.
	Python map[string][]string
	// Duration is how long the call took.
	Duration time.Duration
}

// Pinned returns ref@digest.
func (r *Result) Pinned() string { return r.Ref.Name() + "@" + r.Digest.String() }

// Request is what one call asks for besides the image.
type Request struct {
	// Force builds and pushes even when the image exists.
	Force bool
	// NoCache runs every step again instead of reusing BuildKit's cache.
	NoCache bool
	// Secrets are the contents of the spec's pip_secret_mounts by source;
	// a source not in the map is read from its file when pip runs.
	Secrets map[string][]byte
	// Sink receives the call's events; nil drops them.
	Sink Sink
	// Retain is called when a build adopts this call's image (its files
	// must then stay until the build ends, however long after the call
	// returns); the build calls the release it returns when it ends. Nil:
	// the files outlive every build (files on disk).
	Retain func() (release func())
	// Caller names who asks (a server's authenticated caller); the build
	// the call starts or joins records it (BuildInfo.StartedBy, JoinedBy).
	// Empty: nobody in particular.
	Caller string
}

// Class is what kind of failure an error is. Adapters map classes to their
// own codes (the CLI's exit codes, gRPC status codes) from one table each.
type Class int

// Error classes. The zero value is ClassInternal.
const (
	// ClassInternal: a failure of ispec itself, or one not classified.
	ClassInternal Class = iota
	// ClassInvalid: the spec or request is invalid.
	ClassInvalid
	// ClassUnavailable: a registry or BuildKit is unavailable, or BuildKit
	// cannot build a platform the spec asks for.
	ClassUnavailable
	// ClassFailed: a build step failed.
	ClassFailed
	// ClassBusy: too many builds at once.
	ClassBusy
	// ClassDenied: not allowed.
	ClassDenied
	// ClassCanceled: the caller's context was canceled (interrupted).
	ClassCanceled
	// ClassTimeout: the build ran past its deadline.
	ClassTimeout
	// ClassNotFound: no build has the id asked for.
	ClassNotFound
)

var classNames = [...]string{"internal", "invalid", "unavailable", "failed", "busy", "denied", "canceled", "timeout", "not found"}

// String returns the class's lowercase name, as JSON records carry it.
func (c Class) String() string {
	if c < 0 || int(c) >= len(classNames) {
		return "internal"
	}
	return classNames[c]
}

// File is one file of an Upload, as the client read it.
type File struct {
	// Path is slash-separated, clean and relative to the upload's root.
	Path string
	// Kind is spec.KindFile, spec.KindDir or spec.KindSymlink; anything
	// else (the empty kind included) is refused.
	Kind string
	// Mode holds the 12 Unix permission bits.
	Mode uint32
	// Size is a regular file's size; it names, with Digest, the blob a
	// file without Content is taken from.
	Size int64
	// Digest is a file's content digest, "sha256:<hex>". Required when
	// Content is left out; checked against Content when both are given.
	Digest string
	// Content is a file's bytes sent inline; nil when the upload omits it.
	Content []byte
	// Target is a symlink's target, as stored. It is recorded, never
	// followed.
	Target string
}

// Blobs gives the content of files an upload names by digest (a server's
// blob store).
type Blobs interface {
	// Copy writes the blob of digest ("sha256:<hex>") and size to w.
	Copy(w io.Writer, digest string, size int64) error
}

// Upload is a spec and every file it references, from memory: what a
// client of the service sends. Nothing in it names a path of the client's
// machine, and nothing outside it is read or written.
type Upload struct {
	// SpecPath is the spec file's path in the upload.
	SpecPath string
	// Spec is the spec file's content.
	Spec []byte
	// Files are the other files: nested specs, lock and ignore files,
	// requirements, copied files and source, secret sources, and the
	// folders that hold them.
	Files []File
	// Blobs holds the content of files sent without Content. Nil: such
	// files are placeholders whose digests alone are used (the image
	// resolves and can be looked up, not built).
	Blobs Blobs
}

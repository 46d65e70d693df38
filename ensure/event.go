package ensure

import (
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/client"
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
	Status *client.SolveStatus
	// Digest is the pushed or found manifest's digest.
	Digest v1.Hash
	// Fence is the fencing number of the tag's lease the build holds
	// (Building, Pushed), when the lock is a shared lease.
	Fence int64
	// Daemon is the BuildKit daemon that built the image (Pushed).
	Daemon string
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

// orDrop returns the sink, or one that drops events when it is nil.
func (s Sink) orDrop() func(Event) {
	if s == nil {
		return func(Event) {}
	}
	return s
}

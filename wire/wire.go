// Package wire converts between the API's messages (ispec.v1) and the
// pipeline's vocabulary (package call): error classes and their gRPC
// codes, outcomes, events, progress, spec errors and uploads. The client
// and the server both use it; it links neither BuildKit nor the pipeline.
package wire

import (
	"errors"
	"maps"
	"slices"
	"time"

	digest "github.com/opencontainers/go-digest"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	apiv1 "github.com/ispec-dev/ispec/api/ispec/v1"
	"github.com/ispec-dev/ispec/builder/progress"
	"github.com/ispec-dev/ispec/ensure/call"
	"github.com/ispec-dev/ispec/spec"
)

// classes is the one table from the pipeline's error classes to the API's
// error classes and gRPC status codes.
var classes = map[call.Class]struct {
	api  apiv1.ErrorClass
	code codes.Code
}{
	call.ClassInternal:    {apiv1.ErrorClass_ERROR_CLASS_INTERNAL, codes.Internal},
	call.ClassInvalid:     {apiv1.ErrorClass_ERROR_CLASS_INVALID, codes.InvalidArgument},
	call.ClassUnavailable: {apiv1.ErrorClass_ERROR_CLASS_UNAVAILABLE, codes.Unavailable},
	call.ClassFailed:      {apiv1.ErrorClass_ERROR_CLASS_FAILED, codes.Aborted},
	call.ClassBusy:        {apiv1.ErrorClass_ERROR_CLASS_UNAVAILABLE, codes.ResourceExhausted},
	call.ClassDenied:      {apiv1.ErrorClass_ERROR_CLASS_PERMISSION_DENIED, codes.PermissionDenied},
	call.ClassCanceled:    {apiv1.ErrorClass_ERROR_CLASS_INTERRUPTED, codes.Canceled},
	call.ClassTimeout:     {apiv1.ErrorClass_ERROR_CLASS_TIMEOUT, codes.DeadlineExceeded},
	call.ClassNotFound:    {apiv1.ErrorClass_ERROR_CLASS_INVALID, codes.NotFound},
}

// ClassCode returns the gRPC status code of a class.
func ClassCode(c call.Class) codes.Code { return classes[c].code }

// ClassToAPI returns the API's error class of a class.
func ClassToAPI(c call.Class) apiv1.ErrorClass { return classes[c].api }

// ClassFromAPI returns the pipeline's class of an API error class, so a
// client maps a remote failure exactly as a local one.
func ClassFromAPI(c apiv1.ErrorClass) call.Class {
	switch c {
	case apiv1.ErrorClass_ERROR_CLASS_INVALID:
		return call.ClassInvalid
	case apiv1.ErrorClass_ERROR_CLASS_UNAVAILABLE, apiv1.ErrorClass_ERROR_CLASS_UNSUPPORTED_PLATFORM:
		return call.ClassUnavailable
	case apiv1.ErrorClass_ERROR_CLASS_FAILED:
		return call.ClassFailed
	case apiv1.ErrorClass_ERROR_CLASS_PERMISSION_DENIED:
		return call.ClassDenied
	case apiv1.ErrorClass_ERROR_CLASS_INTERRUPTED:
		return call.ClassCanceled
	case apiv1.ErrorClass_ERROR_CLASS_TIMEOUT:
		return call.ClassTimeout
	}
	return call.ClassInternal
}

// SpecErrors returns the field errors of an invalid-spec error.
func SpecErrors(err error) []*apiv1.SpecError {
	var out []*apiv1.SpecError
	add := func(e *spec.FieldError) {
		out = append(out, &apiv1.SpecError{File: e.File, Line: int32(e.Line), Field: e.Field, Message: e.Msg})
	}
	var es spec.Errors
	var fe *spec.FieldError
	switch {
	case errors.As(err, &es):
		for _, e := range es {
			add(e)
		}
	case errors.As(err, &fe):
		add(fe)
	}
	return out
}

// Identity converts an image's identity.
func Identity(img *spec.Image) *apiv1.ImageIdentity {
	id := img.Identity
	return &apiv1.ImageIdentity{SpecPath: img.File, Ref: id.Ref, Registry: id.Registry, Repository: id.Repository, Tag: id.Tag, SpecHash: id.SpecHash}
}

// MaxMessage is the largest gRPC message a server takes and a client
// sends or receives: a spec input with its inline files.
const MaxMessage = 16 << 20

// MaxChunk is the most bytes one WriteBlobRequest carries.
const MaxChunk = 1 << 20

var outcomes = map[call.Outcome]apiv1.BuildOutcome{
	call.OutcomeBuilt:  apiv1.BuildOutcome_BUILD_OUTCOME_BUILT,
	call.OutcomeFound:  apiv1.BuildOutcome_BUILD_OUTCOME_FOUND,
	call.OutcomeJoined: apiv1.BuildOutcome_BUILD_OUTCOME_JOINED,
}

// OutcomeToAPI converts an outcome.
func OutcomeToAPI(o call.Outcome) apiv1.BuildOutcome { return outcomes[o] }

// OutcomeFromAPI converts an outcome back.
func OutcomeFromAPI(o apiv1.BuildOutcome) call.Outcome {
	for k, v := range outcomes {
		if v == o {
			return k
		}
	}
	return call.OutcomeUnspecified
}

func source(s call.Source) apiv1.LookupSource {
	if s == call.SourceIndex {
		return apiv1.LookupSource_LOOKUP_SOURCE_INDEX
	}
	return apiv1.LookupSource_LOOKUP_SOURCE_REGISTRY
}

// EventToAPI converts a pipeline event; nil for events the detail leaves
// out. failed describes a Failed event's error (the server's
// classification, which knows the builder's errors).
func EventToAPI(ev call.Event, detail apiv1.ProgressDetail, failed func(error) *apiv1.Failed) *apiv1.BuildEvent {
	out := &apiv1.BuildEvent{BuildId: ev.BuildID, Ref: ev.Ref, Time: timestamppb.New(ev.Time)}
	switch ev.Kind {
	case call.KindAccepted:
		out.Event = &apiv1.BuildEvent_Accepted{Accepted: &apiv1.Accepted{BuildId: ev.BuildID}}
	case call.KindJoined:
		out.Event = &apiv1.BuildEvent_Joined{Joined: &apiv1.Joined{BuildId: ev.BuildID}}
	case call.KindWaiting:
		out.Event = &apiv1.BuildEvent_Waiting{Waiting: &apiv1.Waiting{Reason: "another build of this tag holds its lock: " + ev.Holder}}
	case call.KindFound:
		out.Event = &apiv1.BuildEvent_Found{Found: &apiv1.Found{Source: source(ev.Source), Digest: ev.Digest.String()}}
	case call.KindBuilding:
		out.Event = &apiv1.BuildEvent_Building{Building: &apiv1.Building{Fence: ev.Fence}}
	case call.KindProgress:
		if detail == apiv1.ProgressDetail_PROGRESS_DETAIL_NONE || ev.Status == nil {
			return nil
		}
		out.Event = &apiv1.BuildEvent_Progress{Progress: progressToAPI(ev.Status, detail != apiv1.ProgressDetail_PROGRESS_DETAIL_STEPS)}
	case call.KindPushed:
		out.Event = &apiv1.BuildEvent_Pushed{Pushed: &apiv1.Pushed{Digest: ev.Digest.String(), Fence: ev.Fence, Daemon: ev.Daemon, PythonResolved: PythonToAPI(ev.Python)}}
	case call.KindDone:
		d := &apiv1.Done{Ref: ev.Ref, Digest: ev.Digest.String()}
		if r := ev.Result; r != nil {
			d.Ref, d.Outcome, d.Duration = r.Ref.Name(), outcomes[r.Outcome], durationpb.New(r.Duration)
			d.PythonResolved = PythonToAPI(r.Python)
		}
		out.Event = &apiv1.BuildEvent_Done{Done: d}
	case call.KindFailed:
		out.Event = &apiv1.BuildEvent_Failed{Failed: failed(ev.Err)}
	default:
		return nil
	}
	return out
}

func ts(t *time.Time) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return timestamppb.New(*t)
}

func progressToAPI(s *progress.Status, logs bool) *apiv1.Progress {
	p := &apiv1.Progress{}
	for _, v := range s.Vertexes {
		pv := &apiv1.Vertex{Digest: v.Digest.String(), Name: v.Name, Started: ts(v.Started), Completed: ts(v.Completed), Cached: v.Cached, Error: v.Error}
		for _, in := range v.Inputs {
			pv.Inputs = append(pv.Inputs, in.String())
		}
		if g := v.ProgressGroup; g != nil {
			pv.ProgressGroup = &apiv1.ProgressGroup{Id: g.ID, Name: g.Name, Weak: g.Weak}
		}
		p.Vertexes = append(p.Vertexes, pv)
	}
	if !logs {
		return p
	}
	for _, st := range s.Statuses {
		p.Statuses = append(p.Statuses, &apiv1.VertexStatus{Id: st.ID, Vertex: st.Vertex.String(), Name: st.Name, Total: st.Total, Current: st.Current,
			Timestamp: timestamppb.New(st.Timestamp), Started: ts(st.Started), Completed: ts(st.Completed)})
	}
	for _, l := range s.Logs {
		p.Logs = append(p.Logs, &apiv1.VertexLog{Vertex: l.Vertex.String(), Stream: int32(l.Stream), Data: l.Data, Timestamp: timestamppb.New(l.Timestamp)})
	}
	for _, w := range s.Warnings {
		p.Warnings = append(p.Warnings, &apiv1.VertexWarning{Vertex: w.Vertex.String(), Level: int32(w.Level), Short: w.Short, Detail: w.Detail, Url: w.URL})
	}
	return p
}

func tsp(t *timestamppb.Timestamp) *time.Time {
	if t == nil {
		return nil
	}
	v := t.AsTime()
	return &v
}

// ProgressFromAPI converts progress back, for the same displays a local
// build uses.
func ProgressFromAPI(p *apiv1.Progress) *progress.Status {
	s := &progress.Status{}
	for _, v := range p.Vertexes {
		cv := &progress.Vertex{Digest: digest.Digest(v.Digest), Name: v.Name, Started: tsp(v.Started), Completed: tsp(v.Completed), Cached: v.Cached, Error: v.Error}
		for _, in := range v.Inputs {
			cv.Inputs = append(cv.Inputs, digest.Digest(in))
		}
		if g := v.ProgressGroup; g != nil {
			cv.ProgressGroup = &progress.Group{ID: g.Id, Name: g.Name, Weak: g.Weak}
		}
		s.Vertexes = append(s.Vertexes, cv)
	}
	for _, st := range p.Statuses {
		s.Statuses = append(s.Statuses, &progress.VertexStatus{ID: st.Id, Vertex: digest.Digest(st.Vertex), Name: st.Name, Total: st.Total, Current: st.Current,
			Timestamp: st.Timestamp.AsTime(), Started: tsp(st.Started), Completed: tsp(st.Completed)})
	}
	for _, l := range p.Logs {
		s.Logs = append(s.Logs, &progress.VertexLog{Vertex: digest.Digest(l.Vertex), Stream: int(l.Stream), Data: l.Data, Timestamp: l.Timestamp.AsTime()})
	}
	for _, w := range p.Warnings {
		s.Warnings = append(s.Warnings, &progress.VertexWarning{Vertex: digest.Digest(w.Vertex), Level: int(w.Level), Short: w.Short, Detail: w.Detail, URL: w.Url})
	}
	return s
}

// Input converts an upload into the API's spec input.
func Input(up call.Upload) *apiv1.SpecInput {
	in := &apiv1.SpecInput{SpecPath: up.SpecPath, Spec: up.Spec}
	for _, f := range up.Files {
		af := &apiv1.File{Path: f.Path, Mode: f.Mode, Digest: f.Digest, Content: f.Content, Target: f.Target, Size: f.Size}
		switch f.Kind {
		case spec.KindDir:
			af.Kind = apiv1.FileKind_FILE_KIND_DIRECTORY
		case spec.KindSymlink:
			af.Kind = apiv1.FileKind_FILE_KIND_SYMLINK
		default:
			af.Kind = apiv1.FileKind_FILE_KIND_REGULAR
		}
		in.Files = append(in.Files, af)
	}
	return in
}

// PythonToAPI converts what a floating spec's images installed, by
// platform, into the API's list, sorted by platform; nil for none.
func PythonToAPI(py map[string][]string) []*apiv1.PythonResolved {
	var out []*apiv1.PythonResolved
	for _, p := range slices.Sorted(maps.Keys(py)) {
		out = append(out, &apiv1.PythonResolved{Platform: p, Distributions: slices.Clone(py[p])})
	}
	return out
}

// PythonFromAPI is PythonToAPI's inverse; nil for an empty list.
func PythonFromAPI(in []*apiv1.PythonResolved) map[string][]string {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string][]string, len(in))
	for _, p := range in {
		out[p.GetPlatform()] = slices.Clone(p.GetDistributions())
	}
	return out
}

package server

import (
	"errors"
	"time"

	"github.com/moby/buildkit/client"
	digest "github.com/opencontainers/go-digest"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	apiv1 "github.com/ispec-dev/ispec/api/ispec/v1"
	"github.com/ispec-dev/ispec/builder"
	"github.com/ispec-dev/ispec/ensure"
	"github.com/ispec-dev/ispec/spec"
)

// classes is the one table from the pipeline's error classes to the API's
// error classes and gRPC status codes.
var classes = map[ensure.Class]struct {
	api  apiv1.ErrorClass
	code codes.Code
}{
	ensure.ClassInternal:    {apiv1.ErrorClass_ERROR_CLASS_INTERNAL, codes.Internal},
	ensure.ClassInvalid:     {apiv1.ErrorClass_ERROR_CLASS_INVALID, codes.InvalidArgument},
	ensure.ClassUnavailable: {apiv1.ErrorClass_ERROR_CLASS_UNAVAILABLE, codes.Unavailable},
	ensure.ClassFailed:      {apiv1.ErrorClass_ERROR_CLASS_FAILED, codes.Aborted},
	ensure.ClassBusy:        {apiv1.ErrorClass_ERROR_CLASS_UNAVAILABLE, codes.ResourceExhausted},
	ensure.ClassDenied:      {apiv1.ErrorClass_ERROR_CLASS_PERMISSION_DENIED, codes.PermissionDenied},
	ensure.ClassCanceled:    {apiv1.ErrorClass_ERROR_CLASS_INTERRUPTED, codes.Canceled},
	ensure.ClassTimeout:     {apiv1.ErrorClass_ERROR_CLASS_TIMEOUT, codes.DeadlineExceeded},
	ensure.ClassNotFound:    {apiv1.ErrorClass_ERROR_CLASS_INVALID, codes.NotFound},
}

// Code returns the gRPC status code of an error's class.
func Code(err error) codes.Code { return ClassCode(ensure.ClassOf(err)) }

// ClassCode returns the gRPC status code of a class.
func ClassCode(c ensure.Class) codes.Code { return classes[c].code }

// APIClass returns the API's error class of an error.
func APIClass(err error) apiv1.ErrorClass {
	var pe *builder.PlatformError
	if errors.As(err, &pe) {
		return apiv1.ErrorClass_ERROR_CLASS_UNSUPPORTED_PLATFORM
	}
	return classes[ensure.ClassOf(err)].api
}

// ClassFromAPI returns the pipeline's class of an API error class, so a
// client maps a remote failure exactly as a local one.
func ClassFromAPI(c apiv1.ErrorClass) ensure.Class {
	switch c {
	case apiv1.ErrorClass_ERROR_CLASS_INVALID:
		return ensure.ClassInvalid
	case apiv1.ErrorClass_ERROR_CLASS_UNAVAILABLE, apiv1.ErrorClass_ERROR_CLASS_UNSUPPORTED_PLATFORM:
		return ensure.ClassUnavailable
	case apiv1.ErrorClass_ERROR_CLASS_FAILED:
		return ensure.ClassFailed
	case apiv1.ErrorClass_ERROR_CLASS_PERMISSION_DENIED:
		return ensure.ClassDenied
	case apiv1.ErrorClass_ERROR_CLASS_INTERRUPTED:
		return ensure.ClassCanceled
	case apiv1.ErrorClass_ERROR_CLASS_TIMEOUT:
		return ensure.ClassTimeout
	}
	return ensure.ClassInternal
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

var outcomes = map[ensure.Outcome]apiv1.BuildOutcome{
	ensure.OutcomeBuilt:  apiv1.BuildOutcome_BUILD_OUTCOME_BUILT,
	ensure.OutcomeFound:  apiv1.BuildOutcome_BUILD_OUTCOME_FOUND,
	ensure.OutcomeJoined: apiv1.BuildOutcome_BUILD_OUTCOME_JOINED,
}

// OutcomeFromAPI converts an outcome back.
func OutcomeFromAPI(o apiv1.BuildOutcome) ensure.Outcome {
	for k, v := range outcomes {
		if v == o {
			return k
		}
	}
	return ensure.OutcomeUnspecified
}

func source(s ensure.Source) apiv1.LookupSource {
	if s == ensure.SourceIndex {
		return apiv1.LookupSource_LOOKUP_SOURCE_INDEX
	}
	return apiv1.LookupSource_LOOKUP_SOURCE_REGISTRY
}

// EventToAPI converts a pipeline event; nil for events the detail leaves
// out.
func EventToAPI(ev ensure.Event, detail apiv1.ProgressDetail) *apiv1.BuildEvent {
	out := &apiv1.BuildEvent{BuildId: ev.BuildID, Ref: ev.Ref, Time: timestamppb.New(ev.Time)}
	switch ev.Kind {
	case ensure.KindAccepted:
		out.Event = &apiv1.BuildEvent_Accepted{Accepted: &apiv1.Accepted{BuildId: ev.BuildID}}
	case ensure.KindJoined:
		out.Event = &apiv1.BuildEvent_Joined{Joined: &apiv1.Joined{BuildId: ev.BuildID}}
	case ensure.KindWaiting:
		out.Event = &apiv1.BuildEvent_Waiting{Waiting: &apiv1.Waiting{Reason: "another build of this tag holds its lock: " + ev.Holder}}
	case ensure.KindFound:
		out.Event = &apiv1.BuildEvent_Found{Found: &apiv1.Found{Source: source(ev.Source), Digest: ev.Digest.String()}}
	case ensure.KindBuilding:
		out.Event = &apiv1.BuildEvent_Building{Building: &apiv1.Building{Fence: ev.Fence}}
	case ensure.KindProgress:
		if detail == apiv1.ProgressDetail_PROGRESS_DETAIL_NONE || ev.Status == nil {
			return nil
		}
		out.Event = &apiv1.BuildEvent_Progress{Progress: progressToAPI(ev.Status, detail != apiv1.ProgressDetail_PROGRESS_DETAIL_STEPS)}
	case ensure.KindPushed:
		out.Event = &apiv1.BuildEvent_Pushed{Pushed: &apiv1.Pushed{Digest: ev.Digest.String(), Fence: ev.Fence, Daemon: ev.Daemon}}
	case ensure.KindDone:
		d := &apiv1.Done{Ref: ev.Ref, Digest: ev.Digest.String()}
		if r := ev.Result; r != nil {
			d.Ref, d.Outcome, d.Duration = r.Ref.Name(), outcomes[r.Outcome], durationpb.New(r.Duration)
		}
		out.Event = &apiv1.BuildEvent_Done{Done: d}
	case ensure.KindFailed:
		out.Event = &apiv1.BuildEvent_Failed{Failed: FailedToAPI(ev.Err)}
	default:
		return nil
	}
	return out
}

// FailedToAPI describes a failure: its class, message, the failing step
// and its log's tail.
func FailedToAPI(err error) *apiv1.Failed {
	f := &apiv1.Failed{ErrorClass: APIClass(err), Message: err.Error(), SpecErrors: SpecErrors(err)}
	var se *builder.StepError
	if errors.As(err, &se) {
		f.Step, f.LogTail = se.Step, se.Log
	}
	return f
}

func ts(t *time.Time) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return timestamppb.New(*t)
}

func progressToAPI(s *client.SolveStatus, logs bool) *apiv1.Progress {
	p := &apiv1.Progress{}
	for _, v := range s.Vertexes {
		pv := &apiv1.Vertex{Digest: v.Digest.String(), Name: v.Name, Started: ts(v.Started), Completed: ts(v.Completed), Cached: v.Cached, Error: v.Error}
		for _, in := range v.Inputs {
			pv.Inputs = append(pv.Inputs, in.String())
		}
		if g := v.ProgressGroup; g != nil {
			pv.ProgressGroup = &apiv1.ProgressGroup{Id: g.Id, Name: g.Name, Weak: g.Weak}
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

// ProgressFromAPI converts progress back into BuildKit's solve status, for
// the same displays a local build uses.
func ProgressFromAPI(p *apiv1.Progress) *client.SolveStatus {
	s := &client.SolveStatus{}
	for _, v := range p.Vertexes {
		cv := &client.Vertex{Digest: digest.Digest(v.Digest), Name: v.Name, Started: tsp(v.Started), Completed: tsp(v.Completed), Cached: v.Cached, Error: v.Error}
		for _, in := range v.Inputs {
			cv.Inputs = append(cv.Inputs, digest.Digest(in))
		}
		s.Vertexes = append(s.Vertexes, cv)
	}
	for _, st := range p.Statuses {
		s.Statuses = append(s.Statuses, &client.VertexStatus{ID: st.Id, Vertex: digest.Digest(st.Vertex), Name: st.Name, Total: st.Total, Current: st.Current,
			Timestamp: st.Timestamp.AsTime(), Started: tsp(st.Started), Completed: tsp(st.Completed)})
	}
	for _, l := range p.Logs {
		s.Logs = append(s.Logs, &client.VertexLog{Vertex: digest.Digest(l.Vertex), Stream: int(l.Stream), Data: l.Data, Timestamp: l.Timestamp.AsTime()})
	}
	for _, w := range p.Warnings {
		s.Warnings = append(s.Warnings, &client.VertexWarning{Vertex: digest.Digest(w.Vertex), Level: int(w.Level), Short: w.Short, Detail: w.Detail, URL: w.Url})
	}
	return s
}

package server

import (
	"errors"

	"google.golang.org/grpc/codes"

	apiv1 "github.com/ispec-dev/ispec/api/ispec/v1"
	"github.com/ispec-dev/ispec/builder"
	"github.com/ispec-dev/ispec/ensure"
	"github.com/ispec-dev/ispec/spec"
	"github.com/ispec-dev/ispec/wire"
)

// Code returns the gRPC status code of an error's class.
func Code(err error) codes.Code { return wire.ClassCode(ensure.ClassOf(err)) }

// APIClass returns the API's error class of an error.
func APIClass(err error) apiv1.ErrorClass {
	var pe *builder.PlatformError
	if errors.As(err, &pe) {
		return apiv1.ErrorClass_ERROR_CLASS_UNSUPPORTED_PLATFORM
	}
	return wire.ClassToAPI(ensure.ClassOf(err))
}

// SpecErrors returns the field errors of an invalid-spec error.
func SpecErrors(err error) []*apiv1.SpecError { return wire.SpecErrors(err) }

// Identity converts an image's identity.
func Identity(img *spec.Image) *apiv1.ImageIdentity { return wire.Identity(img) }

// EventToAPI converts a pipeline event; nil for events the detail leaves
// out.
func EventToAPI(ev ensure.Event, detail apiv1.ProgressDetail) *apiv1.BuildEvent {
	return wire.EventToAPI(ev, detail, FailedToAPI)
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

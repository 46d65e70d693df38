package validate

import (
	"errors"
	"fmt"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
)

// ErrDecode marks an object that does not decode strictly into its type.
var ErrDecode = errors.New("object does not match its API type")

// DecodeError is an object that failed strict decoding.
type DecodeError struct {
	Object string // Object.ID()
	Err    error
}

func (e *DecodeError) Error() string { return fmt.Sprintf("%s: %v", e.Object, e.Err) }
func (e *DecodeError) Unwrap() []error {
	return []error{ErrDecode, e.Err}
}

// newScheme holds the API groups a deployment of ispec may use: the
// built-in kinds it needs and the Prometheus Operator's monitoring group.
func newScheme() (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, batchv1.AddToScheme, policyv1.AddToScheme,
		networkingv1.AddToScheme, monitoringv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			return nil, fmt.Errorf("scheme: %w", err)
		}
	}
	return s, nil
}

// Decode decodes each object strictly into its typed Go struct: an unknown
// or misspelled field, a duplicate field, a value of the wrong type or a
// kind outside the scheme is an error (a *DecodeError).
func Decode(objs []Object) ([]runtime.Object, error) {
	scheme, err := newScheme()
	if err != nil {
		return nil, err
	}
	ser := json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme,
		json.SerializerOptions{Strict: true})
	var out []runtime.Object
	var errs []error
	for _, o := range objs {
		obj, _, err := ser.Decode(o.JSON, nil, nil)
		if err != nil {
			errs = append(errs, &DecodeError{Object: o.ID(), Err: err})
			continue
		}
		out = append(out, obj)
	}
	return out, errors.Join(errs...)
}

package validate

import (
	"errors"
	"fmt"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
)

// ErrReference marks an object that points at something the deployment
// does not have (a selector that selects no pods, a missing ConfigMap, a
// port no container has).
var ErrReference = errors.New("dangling reference")

// RefError is one dangling reference.
type RefError struct {
	Object string // kind/name of the referring object
	Field  string // where the reference is, e.g. "spec.selector"
	Msg    string
}

func (e *RefError) Error() string { return fmt.Sprintf("%s: %s: %s", e.Object, e.Field, e.Msg) }
func (e *RefError) Unwrap() error { return ErrReference }

// Set is a decoded deployment, indexed for the checks.
type Set struct {
	Workloads  []Workload
	Services   []*corev1.Service
	ConfigMaps map[string]*corev1.ConfigMap
	Secrets    map[string]*corev1.Secret
	Accounts   map[string]bool
	Policies   []*networkingv1.NetworkPolicy
	PDBs       []*policyv1.PodDisruptionBudget
	Monitors   []*monitoringv1.ServiceMonitor
}

// Workload is a Deployment or a StatefulSet.
type Workload struct {
	Kind, Name string
	Replicas   int32
	Selector   *metav1.LabelSelector
	Template   corev1.PodTemplateSpec
	// ServiceName and Claims (volume claim template names) are a
	// StatefulSet's.
	ServiceName string
	Claims      []string
}

// Index sorts decoded objects into a Set.
func Index(objs []runtime.Object) *Set {
	s := &Set{ConfigMaps: map[string]*corev1.ConfigMap{}, Secrets: map[string]*corev1.Secret{}, Accounts: map[string]bool{}}
	replicas := func(r *int32) int32 {
		if r == nil {
			return 1
		}
		return *r
	}
	for _, o := range objs {
		switch v := o.(type) {
		case *appsv1.Deployment:
			s.Workloads = append(s.Workloads, Workload{Kind: "Deployment", Name: v.Name,
				Replicas: replicas(v.Spec.Replicas), Selector: v.Spec.Selector, Template: v.Spec.Template})
		case *appsv1.StatefulSet:
			w := Workload{Kind: "StatefulSet", Name: v.Name, Replicas: replicas(v.Spec.Replicas),
				Selector: v.Spec.Selector, Template: v.Spec.Template, ServiceName: v.Spec.ServiceName}
			for _, c := range v.Spec.VolumeClaimTemplates {
				w.Claims = append(w.Claims, c.Name)
			}
			s.Workloads = append(s.Workloads, w)
		case *corev1.Service:
			s.Services = append(s.Services, v)
		case *corev1.ConfigMap:
			s.ConfigMaps[v.Name] = v
		case *corev1.Secret:
			s.Secrets[v.Name] = v
		case *corev1.ServiceAccount:
			s.Accounts[v.Name] = true
		case *networkingv1.NetworkPolicy:
			s.Policies = append(s.Policies, v)
		case *policyv1.PodDisruptionBudget:
			s.PDBs = append(s.PDBs, v)
		case *monitoringv1.ServiceMonitor:
			s.Monitors = append(s.Monitors, v)
		}
	}
	return s
}

// Workload returns the workload of that kind and name, or nil.
func (s *Set) Workload(kind, name string) *Workload {
	for i := range s.Workloads {
		if s.Workloads[i].Kind == kind && s.Workloads[i].Name == name {
			return &s.Workloads[i]
		}
	}
	return nil
}

// selected returns the workloads whose pods sel selects.
func (s *Set) selected(sel labels.Selector) []*Workload {
	var out []*Workload
	for i := range s.Workloads {
		if !sel.Empty() && sel.Matches(labels.Set(s.Workloads[i].Template.Labels)) {
			out = append(out, &s.Workloads[i])
		}
	}
	return out
}

// containerPort reports whether some container of w has port p (a name or
// a number).
func (w *Workload) containerPort(name string, num int32) bool {
	for _, c := range w.Template.Spec.Containers {
		for _, cp := range c.Ports {
			if (name != "" && cp.Name == name) || (name == "" && cp.ContainerPort == num) {
				return true
			}
		}
	}
	return false
}

// CheckRefs checks that the objects of s refer only to one another.
func CheckRefs(s *Set) error {
	var errs []error
	bad := func(obj, field, format string, args ...any) {
		errs = append(errs, &RefError{Object: obj, Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	for i := range s.Workloads {
		w := &s.Workloads[i]
		id := w.Kind + "/" + w.Name
		sel, err := metav1.LabelSelectorAsSelector(w.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(w.Template.Labels)) {
			bad(id, "spec.selector", "does not select the pod template's labels %v", w.Template.Labels)
		}
		spec := w.Template.Spec
		if spec.ServiceAccountName != "" && !s.Accounts[spec.ServiceAccountName] {
			bad(id, "spec.template.spec.serviceAccountName", "no ServiceAccount %q", spec.ServiceAccountName)
		}
		vols := map[string]bool{}
		for _, v := range spec.Volumes {
			vols[v.Name] = true
			if v.ConfigMap != nil && s.ConfigMaps[v.ConfigMap.Name] == nil {
				bad(id, "volumes."+v.Name, "no ConfigMap %q", v.ConfigMap.Name)
			}
			if v.Secret != nil && s.Secrets[v.Secret.SecretName] == nil {
				bad(id, "volumes."+v.Name, "no Secret %q", v.Secret.SecretName)
			}
			if v.Secret != nil && s.Secrets[v.Secret.SecretName] != nil {
				sec := s.Secrets[v.Secret.SecretName]
				for _, it := range v.Secret.Items {
					if _, ok := sec.Data[it.Key]; !ok {
						if _, ok := sec.StringData[it.Key]; !ok {
							bad(id, "volumes."+v.Name, "Secret %q has no key %q", sec.Name, it.Key)
						}
					}
				}
			}
		}
		for _, v := range w.Claims {
			vols[v] = true
		}
		for _, c := range spec.Containers {
			for _, m := range c.VolumeMounts {
				if !vols[m.Name] {
					bad(id, "containers."+c.Name+".volumeMounts", "no volume %q", m.Name)
				}
			}
			for _, p := range []*corev1.Probe{c.StartupProbe, c.ReadinessProbe, c.LivenessProbe} {
				if p != nil && p.GRPC != nil && !w.containerPort("", p.GRPC.Port) {
					bad(id, "containers."+c.Name+" probe", "gRPC probe port %d is no container port", p.GRPC.Port)
				}
			}
		}
	}
	for _, svc := range s.Services {
		id := "Service/" + svc.Name
		ws := s.selected(labels.SelectorFromSet(svc.Spec.Selector))
		if len(ws) == 0 {
			bad(id, "spec.selector", "selects no pods")
			continue
		}
		for _, p := range svc.Spec.Ports {
			for _, w := range ws {
				if !w.containerPort(p.TargetPort.StrVal, p.TargetPort.IntVal) {
					bad(id, "spec.ports."+p.Name, "target port %s is not a port of %s/%s", p.TargetPort.String(), w.Kind, w.Name)
				}
			}
		}
	}
	for i := range s.Workloads {
		if w := &s.Workloads[i]; w.Kind == "StatefulSet" {
			found := false
			for _, svc := range s.Services {
				found = found || svc.Name == w.ServiceName
			}
			if !found {
				bad("StatefulSet/"+w.Name, "spec.serviceName", "no Service %q", w.ServiceName)
			}
		}
	}
	selects := func(id, field string, ls *metav1.LabelSelector) {
		sel, err := metav1.LabelSelectorAsSelector(ls)
		if err != nil || len(s.selected(sel)) == 0 {
			bad(id, field, "selects no pods")
		}
	}
	for _, np := range s.Policies {
		id := "NetworkPolicy/" + np.Name
		selects(id, "spec.podSelector", &np.Spec.PodSelector)
		for _, in := range np.Spec.Ingress {
			for _, from := range in.From {
				if from.PodSelector != nil && from.NamespaceSelector == nil {
					selects(id, "spec.ingress.from.podSelector", from.PodSelector)
				}
			}
		}
	}
	for _, pdb := range s.PDBs {
		selects("PodDisruptionBudget/"+pdb.Name, "spec.selector", pdb.Spec.Selector)
	}
	for _, sm := range s.Monitors {
		id := "ServiceMonitor/" + sm.Name
		sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
		var svcs []*corev1.Service
		for _, svc := range s.Services {
			if err == nil && !sel.Empty() && sel.Matches(labels.Set(svc.Labels)) {
				svcs = append(svcs, svc)
			}
		}
		if len(svcs) == 0 {
			bad(id, "spec.selector", "selects no Service")
		}
		for _, ep := range sm.Spec.Endpoints {
			for _, svc := range svcs {
				found := false
				for _, p := range svc.Spec.Ports {
					found = found || (ep.Port != "" && p.Name == ep.Port)
				}
				if !found {
					bad(id, "spec.endpoints.port", "Service %s has no port named %q", svc.Name, ep.Port)
				}
			}
		}
	}
	return errors.Join(errs...)
}

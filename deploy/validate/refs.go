package validate

import (
	"errors"
	"fmt"
	"slices"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
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
	Object string // namespace/kind/name of the referring object
	Field  string // where the reference is, e.g. "spec.selector"
	Msg    string
}

func (e *RefError) Error() string { return fmt.Sprintf("%s: %s: %s", e.Object, e.Field, e.Msg) }
func (e *RefError) Unwrap() error { return ErrReference }

// Set is a decoded deployment, indexed for the checks. Names are unique
// per kind within a namespace only: the maps are keyed "namespace/name".
type Set struct {
	Namespaces map[string]*corev1.Namespace
	Workloads  []Workload
	Services   []*corev1.Service
	ConfigMaps map[string]*corev1.ConfigMap
	Secrets    map[string]*corev1.Secret
	Accounts   map[string]bool
	Policies   []*networkingv1.NetworkPolicy
	PDBs       []*policyv1.PodDisruptionBudget
	Monitors   []*monitoringv1.ServiceMonitor
	// External are the Secrets the deployment mounts but does not hold:
	// the operator creates them (ExternalSecrets).
	External map[string][]string
}

// Workload is anything with a pod template: a Deployment, StatefulSet,
// DaemonSet, ReplicaSet, Job, CronJob or a bare Pod.
type Workload struct {
	Kind, Namespace, Name string
	Replicas              int32
	Selector              *metav1.LabelSelector
	Template              corev1.PodTemplateSpec
	// ServiceName and Claims (volume claim template names) are a
	// StatefulSet's.
	ServiceName string
	Claims      []string
}

// ID names the workload in messages: "namespace/Kind/name".
func (w *Workload) ID() string { return w.Namespace + "/" + w.Kind + "/" + w.Name }

// key is the index key of a namespaced object.
func key(ns, name string) string { return ns + "/" + name }

// ExternalSecret is a Secret the deployment mounts that the operator
// creates outside kustomize (its keys must not sit next to the manifests).
type ExternalSecret struct {
	Namespace, Name string
	Keys            []string
}

// ExternalSecrets are the Secrets deploy/README.md tells the operator to
// create: the BuildKit daemons' server certificate with their clients' CA,
// and ispec's client certificate with the daemons' CA (the layout
// cert-manager writes: ca.crt, tls.crt, tls.key).
func ExternalSecrets() []ExternalSecret {
	keys := []string{"ca.crt", "tls.crt", "tls.key"}
	return []ExternalSecret{
		{Namespace: "ispec-buildkit", Name: "buildkitd-tls", Keys: keys},
		{Namespace: "ispec", Name: "buildkit-client-tls", Keys: keys},
	}
}

// Index sorts decoded objects into a Set.
func Index(objs []runtime.Object) *Set {
	s := &Set{Namespaces: map[string]*corev1.Namespace{}, ConfigMaps: map[string]*corev1.ConfigMap{},
		Secrets: map[string]*corev1.Secret{}, Accounts: map[string]bool{}, External: map[string][]string{}}
	for _, e := range ExternalSecrets() {
		s.External[key(e.Namespace, e.Name)] = e.Keys
	}
	replicas := func(r *int32) int32 {
		if r == nil {
			return 1
		}
		return *r
	}
	add := func(kind string, m metav1.ObjectMeta, n int32, sel *metav1.LabelSelector, t corev1.PodTemplateSpec) *Workload {
		s.Workloads = append(s.Workloads, Workload{Kind: kind, Namespace: m.Namespace, Name: m.Name,
			Replicas: n, Selector: sel, Template: t})
		return &s.Workloads[len(s.Workloads)-1]
	}
	for _, o := range objs {
		switch v := o.(type) {
		case *corev1.Namespace:
			s.Namespaces[v.Name] = v
		case *appsv1.Deployment:
			add("Deployment", v.ObjectMeta, replicas(v.Spec.Replicas), v.Spec.Selector, v.Spec.Template)
		case *appsv1.StatefulSet:
			w := add("StatefulSet", v.ObjectMeta, replicas(v.Spec.Replicas), v.Spec.Selector, v.Spec.Template)
			w.ServiceName = v.Spec.ServiceName
			for _, c := range v.Spec.VolumeClaimTemplates {
				w.Claims = append(w.Claims, c.Name)
			}
		case *appsv1.DaemonSet:
			add("DaemonSet", v.ObjectMeta, 1, v.Spec.Selector, v.Spec.Template)
		case *appsv1.ReplicaSet:
			add("ReplicaSet", v.ObjectMeta, replicas(v.Spec.Replicas), v.Spec.Selector, v.Spec.Template)
		case *batchv1.Job:
			add("Job", v.ObjectMeta, 1, nil, v.Spec.Template)
		case *batchv1.CronJob:
			add("CronJob", v.ObjectMeta, 1, nil, v.Spec.JobTemplate.Spec.Template)
		case *corev1.Pod:
			add("Pod", v.ObjectMeta, 1, nil, corev1.PodTemplateSpec{ObjectMeta: v.ObjectMeta, Spec: v.Spec})
		case *corev1.Service:
			s.Services = append(s.Services, v)
		case *corev1.ConfigMap:
			s.ConfigMaps[key(v.Namespace, v.Name)] = v
		case *corev1.Secret:
			s.Secrets[key(v.Namespace, v.Name)] = v
		case *corev1.ServiceAccount:
			s.Accounts[key(v.Namespace, v.Name)] = true
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

// Workload returns the workload of that kind and name (in any namespace),
// or nil.
func (s *Set) Workload(kind, name string) *Workload {
	for i := range s.Workloads {
		if s.Workloads[i].Kind == kind && s.Workloads[i].Name == name {
			return &s.Workloads[i]
		}
	}
	return nil
}

// service returns the Service name in namespace ns, or nil.
func (s *Set) service(ns, name string) *corev1.Service {
	for _, svc := range s.Services {
		if svc.Namespace == ns && svc.Name == name {
			return svc
		}
	}
	return nil
}

// selected returns the workloads of the namespaces nss whose pods sel
// selects. An empty selector selects nothing here: none of the
// deployment's selectors means "every pod".
func (s *Set) selected(sel labels.Selector, nss ...string) []*Workload {
	var out []*Workload
	for i := range s.Workloads {
		w := &s.Workloads[i]
		if slices.Contains(nss, w.Namespace) && !sel.Empty() && sel.Matches(labels.Set(w.Template.Labels)) {
			out = append(out, w)
		}
	}
	return out
}

// namespacesMatching returns the deployment's namespaces whose labels sel
// selects, with the label kubernetes.io/metadata.name every namespace
// carries.
func (s *Set) namespacesMatching(sel labels.Selector) []string {
	var out []string
	for name, ns := range s.Namespaces {
		l := labels.Set{"kubernetes.io/metadata.name": name}
		for k, v := range ns.Labels {
			l[k] = v
		}
		if sel.Matches(l) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
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

// CheckRefs checks that the objects of s refer only to one another, each
// within its own namespace unless the reference names another.
func CheckRefs(s *Set) error {
	var errs []error
	bad := func(obj, field, format string, args ...any) {
		errs = append(errs, &RefError{Object: obj, Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	for i := range s.Workloads {
		checkWorkloadRefs(s, &s.Workloads[i], bad)
	}
	for _, svc := range s.Services {
		id := svc.Namespace + "/Service/" + svc.Name
		ws := s.selected(labels.SelectorFromSet(svc.Spec.Selector), svc.Namespace)
		if len(ws) == 0 {
			bad(id, "spec.selector", "selects no pods in namespace %q", svc.Namespace)
			continue
		}
		for _, p := range svc.Spec.Ports {
			for _, w := range ws {
				if !w.containerPort(p.TargetPort.StrVal, p.TargetPort.IntVal) {
					bad(id, "spec.ports."+p.Name, "target port %s is not a port of %s", p.TargetPort.String(), w.ID())
				}
			}
		}
	}
	selects := func(id, field string, ls *metav1.LabelSelector, nss ...string) {
		sel, err := metav1.LabelSelectorAsSelector(ls)
		if err != nil || len(s.selected(sel, nss...)) == 0 {
			bad(id, field, "selects no pods in namespace %q", nss)
		}
	}
	for _, np := range s.Policies {
		id := np.Namespace + "/NetworkPolicy/" + np.Name
		selects(id, "spec.podSelector", &np.Spec.PodSelector, np.Namespace)
		for _, in := range np.Spec.Ingress {
			for _, from := range in.From {
				nss := []string{np.Namespace}
				if from.NamespaceSelector != nil {
					sel, err := metav1.LabelSelectorAsSelector(from.NamespaceSelector)
					if err != nil {
						bad(id, "spec.ingress.from.namespaceSelector", "%v", err)
						continue
					}
					if nss = s.namespacesMatching(sel); len(nss) == 0 {
						bad(id, "spec.ingress.from.namespaceSelector", "selects none of the deployment's namespaces")
						continue
					}
				}
				if from.PodSelector != nil {
					selects(id, "spec.ingress.from.podSelector", from.PodSelector, nss...)
				}
			}
		}
	}
	for _, pdb := range s.PDBs {
		selects(pdb.Namespace+"/PodDisruptionBudget/"+pdb.Name, "spec.selector", pdb.Spec.Selector, pdb.Namespace)
	}
	for _, sm := range s.Monitors {
		checkMonitor(s, sm, bad)
	}
	return errors.Join(errs...)
}

// checkWorkloadRefs checks a workload's selector, ServiceAccount,
// volumes, mounts and probes, and a StatefulSet's Service.
func checkWorkloadRefs(s *Set, w *Workload, bad func(obj, field, format string, args ...any)) {
	id := w.ID()
	if w.Selector != nil {
		sel, err := metav1.LabelSelectorAsSelector(w.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(w.Template.Labels)) {
			bad(id, "spec.selector", "does not select the pod template's labels %v", w.Template.Labels)
		}
	}
	spec := w.Template.Spec
	if spec.ServiceAccountName != "" && !s.Accounts[key(w.Namespace, spec.ServiceAccountName)] {
		bad(id, "spec.template.spec.serviceAccountName", "no ServiceAccount %q in namespace %q", spec.ServiceAccountName, w.Namespace)
	}
	vols := map[string]bool{}
	for _, v := range spec.Volumes {
		vols[v.Name] = true
		if v.ConfigMap != nil && s.ConfigMaps[key(w.Namespace, v.ConfigMap.Name)] == nil {
			bad(id, "volumes."+v.Name, "no ConfigMap %q in namespace %q", v.ConfigMap.Name, w.Namespace)
		}
		if v.Secret == nil {
			continue
		}
		k := key(w.Namespace, v.Secret.SecretName)
		has, known := secretKeys(s, k)
		if !known {
			bad(id, "volumes."+v.Name, "no Secret %q in namespace %q", v.Secret.SecretName, w.Namespace)
			continue
		}
		for _, it := range v.Secret.Items {
			if !slices.Contains(has, it.Key) {
				bad(id, "volumes."+v.Name, "Secret %q has no key %q", v.Secret.SecretName, it.Key)
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
	if w.Kind == "StatefulSet" && s.service(w.Namespace, w.ServiceName) == nil {
		bad(id, "spec.serviceName", "no Service %q in namespace %q", w.ServiceName, w.Namespace)
	}
}

// secretKeys returns the keys of the Secret k ("namespace/name"), whether
// the deployment holds it or the operator creates it (ExternalSecrets).
func secretKeys(s *Set, k string) (keys []string, known bool) {
	if sec := s.Secrets[k]; sec != nil {
		for name := range sec.Data {
			keys = append(keys, name)
		}
		for name := range sec.StringData {
			keys = append(keys, name)
		}
		return keys, true
	}
	keys, known = s.External[k]
	return keys, known
}

// checkMonitor checks that a ServiceMonitor selects a Service, in its own
// namespace unless spec.namespaceSelector says otherwise, with the port
// each endpoint scrapes.
func checkMonitor(s *Set, sm *monitoringv1.ServiceMonitor, bad func(obj, field, format string, args ...any)) {
	id := sm.Namespace + "/ServiceMonitor/" + sm.Name
	nss := []string{sm.Namespace}
	switch ns := sm.Spec.NamespaceSelector; {
	case ns.Any:
		nss = nil
		for name := range s.Namespaces {
			nss = append(nss, name)
		}
	case len(ns.MatchNames) > 0:
		nss = ns.MatchNames
	}
	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	var svcs []*corev1.Service
	for _, svc := range s.Services {
		if err == nil && !sel.Empty() && slices.Contains(nss, svc.Namespace) && sel.Matches(labels.Set(svc.Labels)) {
			svcs = append(svcs, svc)
		}
	}
	if len(svcs) == 0 {
		bad(id, "spec.selector", "selects no Service in namespace %q", nss)
	}
	for _, ep := range sm.Spec.Endpoints {
		for _, svc := range svcs {
			found := false
			for _, p := range svc.Spec.Ports {
				found = found || (ep.Port != "" && p.Name == ep.Port)
			}
			if !found {
				bad(id, "spec.endpoints.port", "Service %s/%s has no port named %q", svc.Namespace, svc.Name, ep.Port)
			}
		}
	}
}

package validate

import (
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	psapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
)

// ErrAdmission marks an object a cluster would refuse or misplace: a pod
// template its namespace's Pod Security level forbids, a namespaced object
// without a namespace (kubectl puts it in its context's, usually default),
// a namespace the deployment does not create.
var ErrAdmission = errors.New("a cluster would not admit it")

// AdmissionError is one object a cluster would refuse or misplace.
type AdmissionError struct {
	Object string // namespace/Kind/name
	Msg    string
}

func (e *AdmissionError) Error() string { return e.Object + ": " + e.Msg }
func (e *AdmissionError) Unwrap() error { return ErrAdmission }

// clusterScoped are the kinds of the scheme that live in no namespace.
func clusterScoped(kind string) bool { return kind == "Namespace" }

// CheckNamespaces checks that every namespaced object names a namespace,
// and one the deployment creates: otherwise it lands wherever kubectl's
// context points, beside the objects it should find, under a Pod Security
// level nobody chose.
func CheckNamespaces(objs []Object) error {
	created := map[string]bool{}
	for _, o := range objs {
		if o.Kind == "Namespace" {
			created[o.Name] = true
		}
	}
	var errs []error
	for _, o := range objs {
		id := o.Namespace + "/" + o.Kind + "/" + o.Name
		switch {
		case clusterScoped(o.Kind):
		case o.Namespace == "":
			errs = append(errs, &AdmissionError{Object: id, Msg: "no namespace: kubectl would put it in its context's namespace (usually default)"})
		case !created[o.Namespace]:
			errs = append(errs, &AdmissionError{Object: id, Msg: fmt.Sprintf("namespace %q is not one the deployment creates", o.Namespace)})
		}
	}
	return errors.Join(errs...)
}

// CheckPodSecurity evaluates every pod template against the Pod Security
// level its namespace enforces (the pod-security.kubernetes.io/enforce and
// enforce-version labels; a namespace without them enforces privileged,
// the API server's default), with the Pod Security admission plugin's own
// checks: what the API server would refuse (for a Deployment, the
// ReplicaSet's pods it would never create).
func CheckPodSecurity(s *Set) error {
	eval, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		return fmt.Errorf("pod security evaluator: %w", err)
	}
	defaults := psapi.Policy{
		Enforce: psapi.LevelVersion{Level: psapi.LevelPrivileged, Version: psapi.LatestVersion()},
		Audit:   psapi.LevelVersion{Level: psapi.LevelPrivileged, Version: psapi.LatestVersion()},
		Warn:    psapi.LevelVersion{Level: psapi.LevelPrivileged, Version: psapi.LatestVersion()},
	}
	var errs []error
	for name, ns := range s.Namespaces {
		if _, fe := psapi.PolicyToEvaluate(ns.Labels, defaults); len(fe) > 0 {
			errs = append(errs, &AdmissionError{Object: "/Namespace/" + name, Msg: fe.ToAggregate().Error()})
		}
	}
	for i := range s.Workloads {
		w := &s.Workloads[i]
		ns := s.Namespaces[w.Namespace]
		if ns == nil {
			continue // CheckNamespaces reports it
		}
		p, _ := psapi.PolicyToEvaluate(ns.Labels, defaults)
		res := policy.AggregateCheckResults(eval.EvaluatePod(p.Enforce, &w.Template.ObjectMeta, &w.Template.Spec))
		if !res.Allowed {
			errs = append(errs, &AdmissionError{Object: w.ID(), Msg: fmt.Sprintf(
				"violates PodSecurity %q of namespace %s: %s", p.Enforce.String(), w.Namespace, res.ForbiddenDetail())})
		}
	}
	return errors.Join(errs...)
}

// ErrVolume marks a volume a pod would fill or could not write.
var ErrVolume = errors.New("volume does not fit its pod")

// VolumeError is one such volume.
type VolumeError struct {
	Object, Volume, Msg string
}

func (e *VolumeError) Error() string {
	return fmt.Sprintf("%s: volume %s: %s", e.Object, e.Volume, e.Msg)
}
func (e *VolumeError) Unwrap() error { return ErrVolume }

// CheckVolumes checks every pod's volumes: an emptyDir needs a sizeLimit
// (without one a build or cache fills the node's disk and the kubelet
// evicts whatever runs there), and a persistent volume written by a
// non-root user needs the pod's fsGroup (a new volume's root belongs to
// root: a uid other than 0 cannot write it).
func CheckVolumes(s *Set) error {
	var errs []error
	for i := range s.Workloads {
		w := &s.Workloads[i]
		spec := &w.Template.Spec
		claims := map[string]bool{}
		for _, c := range w.Claims {
			claims[c] = true
		}
		for _, v := range spec.Volumes {
			if v.EmptyDir != nil && v.EmptyDir.SizeLimit == nil {
				errs = append(errs, &VolumeError{Object: w.ID(), Volume: v.Name, Msg: "emptyDir without sizeLimit"})
			}
			if v.PersistentVolumeClaim != nil || v.Ephemeral != nil {
				claims[v.Name] = true
			}
		}
		if spec.SecurityContext != nil && spec.SecurityContext.FSGroup != nil {
			continue
		}
		for _, c := range spec.Containers {
			uid := runAsUser(spec.SecurityContext, c.SecurityContext)
			for _, m := range c.VolumeMounts {
				if claims[m.Name] && !m.ReadOnly && uid != nil && *uid != 0 {
					errs = append(errs, &VolumeError{Object: w.ID(), Volume: m.Name, Msg: fmt.Sprintf(
						"container %s writes it as uid %d but the pod sets no securityContext.fsGroup: the volume's root stays root's", c.Name, *uid)})
				}
			}
		}
	}
	return errors.Join(errs...)
}

// runAsUser is a container's user: its own securityContext's, else the
// pod's; nil when neither says (the image's, which the check cannot see).
func runAsUser(pod *corev1.PodSecurityContext, c *corev1.SecurityContext) *int64 {
	if c != nil && c.RunAsUser != nil {
		return c.RunAsUser
	}
	if pod != nil {
		return pod.RunAsUser
	}
	return nil
}

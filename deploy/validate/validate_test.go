package validate

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// render builds an overlay of the deploy/ folder on disk and checks it.
func render(t *testing.T, overlay string) (*Set, []Object) {
	t.Helper()
	objs, err := Render(filesys.MakeFsOnDisk(), filepath.Join("..", "overlays", overlay))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Check(objs)
	if err != nil {
		t.Fatalf("overlay %s:\n%v", overlay, err)
	}
	return s, objs
}

func serverConfig(t *testing.T, s *Set) map[string]any {
	t.Helper()
	for _, cm := range s.ConfigMaps {
		if strings.HasPrefix(cm.Name, "ispec-config") {
			var cfg map[string]any
			if err := yaml.Unmarshal([]byte(cm.Data["config.yaml"]), &cfg); err != nil {
				t.Fatal(err)
			}
			return cfg
		}
	}
	t.Fatal("no ispec-config ConfigMap")
	return nil
}

func kinds(objs []Object) map[string]int {
	m := map[string]int{}
	for _, o := range objs {
		m[o.Kind]++
	}
	return m
}

func TestOverlays(t *testing.T) {
	t.Run("single", func(t *testing.T) {
		s, objs := render(t, "single")
		if w := s.Workload("Deployment", "ispec"); w == nil || w.Replicas != 1 {
			t.Errorf("single: want one ispec replica, got %+v", w)
		}
		if w := s.Workload("StatefulSet", "buildkitd"); w == nil || w.Replicas != 1 {
			t.Errorf("single: want one buildkitd, got %+v", w)
		}
		if s.Workload("Deployment", "redis") != nil {
			t.Error("single runs Redis; it coordinates in process")
		}
		if cfg := serverConfig(t, s); cfg["redis-url"] != nil {
			t.Errorf("single sets redis-url %v", cfg["redis-url"])
		}
		want := map[string]int{"Namespace": 2, "ServiceAccount": 1, "Deployment": 1, "StatefulSet": 1,
			"Service": 2, "ConfigMap": 3, "Secret": 2, "NetworkPolicy": 1, "PodDisruptionBudget": 1, "ServiceMonitor": 1}
		checkKinds(t, objs, want)
	})
	t.Run("ha", func(t *testing.T) {
		s, objs := render(t, "ha")
		if w := s.Workload("Deployment", "ispec"); w == nil || w.Replicas < 2 {
			t.Errorf("ha: want several ispec replicas, got %+v", w)
		}
		if w := s.Workload("StatefulSet", "buildkitd"); w == nil || w.Replicas < 2 {
			t.Errorf("ha: want a pool of daemons, got %+v", w)
		}
		if w := s.Workload("Deployment", "ispec"); w == nil || len(w.Template.Spec.TopologySpreadConstraints) == 0 {
			t.Error("ha: the ispec replicas are not spread over nodes (patch ispec-spread.yaml not applied)")
		}
		cfg := serverConfig(t, s)
		if cfg["redis-url"] != "redis://redis:6379/0" {
			t.Errorf("ha: redis-url = %v", cfg["redis-url"])
		}
		if n := len(strings.Split(cfg["buildkit-addr"].(string), ",")); n != 3 {
			t.Errorf("ha: %d BuildKit addresses, want 3", n)
		}
		want := map[string]int{"Namespace": 2, "ServiceAccount": 1, "Deployment": 2, "StatefulSet": 1,
			"Service": 3, "ConfigMap": 3, "Secret": 2, "NetworkPolicy": 2, "PodDisruptionBudget": 2, "ServiceMonitor": 1}
		checkKinds(t, objs, want)
	})
	// What both overlays promise about the ispec pods.
	for _, overlay := range []string{"single", "ha"} {
		t.Run(overlay+"/ispec-pod", func(t *testing.T) {
			s, objs := render(t, overlay)
			checkIspecPod(t, s, objs)
		})
	}
}

func checkKinds(t *testing.T, objs []Object, want map[string]int) {
	t.Helper()
	got := kinds(objs)
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%d %s objects, want %d", got[k], k, n)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected kind %s", k)
		}
	}
}

func checkIspecPod(t *testing.T, s *Set, objs []Object) {
	t.Helper()
	w := s.Workload("Deployment", "ispec")
	spec := w.Template.Spec
	if sc := spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot || sc.RunAsUser == nil || *sc.RunAsUser != 65532 {
		t.Errorf("ispec pod is not non-root 65532: %+v", spec.SecurityContext)
	}
	c := spec.Containers[0]
	if c.SecurityContext == nil || c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
		t.Error("ispec container's root filesystem is writable")
	}
	for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.GRPC == nil || p.GRPC.Port != 8080 {
			t.Errorf("%s probe is not a gRPC probe on 8080: %+v", name, p)
		}
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	if env["ISPEC_CONFIG"] != "/etc/ispec/config.yaml" || env["DOCKER_CONFIG"] != "/etc/ispec/docker" {
		t.Errorf("env = %v", env)
	}
	if c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
		t.Error("ispec container has no resources")
	}
	for _, o := range objs {
		if o.Kind == "Deployment" && o.Name == "ispec" {
			var d appsv1.Deployment
			if err := yaml.Unmarshal(o.JSON, &d); err != nil || d.Namespace != "ispec" {
				t.Errorf("ispec Deployment namespace %q (err %v)", d.Namespace, err)
			}
		}
	}
}

// memFS copies the deploy/ folder (without this module) into memory.
func memFS(t *testing.T) filesys.FileSystem {
	t.Helper()
	fs := filesys.MakeFsInMemory()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			if rel == "validate" {
				return filepath.SkipDir
			}
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return fs.WriteFile(filepath.Join("/deploy", rel), data)
	})
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

// TestRejects breaks the deployment in the ways people do and checks that
// each is caught, with the object and field named.
func TestRejects(t *testing.T) {
	cases := []struct {
		name, overlay, file, old, new string
		want                          error
		msg                           string
	}{
		// Misspelled or unknown fields in built-in kinds.
		{"deployment field", "single", "base/ispec/deployment.yaml", "  revisionHistoryLimit: 5", "  revisonHistoryLimit: 5", ErrDecode, `unknown field "spec.revisonHistoryLimit"`},
		{"container field", "single", "base/ispec/deployment.yaml", "          readinessProbe:", "          readynessProbe:", ErrDecode, `unknown field "spec.template.spec.containers[0].readynessProbe"`},
		{"probe field", "ha", "base/ispec/deployment.yaml", "            grpc:\n              port: 8080\n            periodSeconds: 5", "            grpc:\n              prot: 8080\n            periodSeconds: 5", ErrDecode, `unknown field "spec.template.spec.containers[0].readinessProbe.grpc.prot"`},
		{"statefulset field", "ha", "base/buildkit/statefulset.yaml", "  podManagementPolicy: Parallel", "  podManagementPolicy: Parallel\n  volumeClaimTemplate: []", ErrDecode, `unknown field "spec.volumeClaimTemplate"`},
		{"service field", "single", "base/buildkit/service.yaml", "  clusterIP: None", "  clusterIp: None", ErrDecode, `unknown field "spec.clusterIp"`},
		{"networkpolicy field", "ha", "overlays/ha/redis.yaml", "  policyTypes: [\"Ingress\"]", "  policyType: [\"Ingress\"]", ErrDecode, `unknown field "spec.policyType"`},
		{"pdb field", "single", "base/ispec/pdb.yaml", "  maxUnavailable: 1", "  maxUnavailble: 1", ErrDecode, `unknown field "spec.maxUnavailble"`},
		// Values of the wrong type.
		{"replicas string", "single", "base/ispec/deployment.yaml", "  replicas: 1", "  replicas: one", ErrDecode, "Deployment ispec/ispec"},
		{"port string", "single", "base/ispec/service.yaml", "      port: 8080", "      port: grpc", ErrDecode, "Service ispec/ispec"},
		// Kinds outside the scheme.
		{"misspelled kind", "single", "base/ispec/pdb.yaml", "kind: PodDisruptionBudget", "kind: PodDisruptionBudgit", ErrDecode, "PodDisruptionBudgit"},
		{"wrong group version", "single", "base/ispec/pdb.yaml", "apiVersion: policy/v1", "apiVersion: policy/v1beta1", ErrDecode, "policy/v1beta1"},
		// The monitoring CRD.
		{"servicemonitor field", "single", "components/monitoring/servicemonitor.yaml", "      interval: 30s", "      intervall: 30s", ErrDecode, `unknown field "spec.endpoints[0].intervall"`},
		{"servicemonitor spec", "ha", "components/monitoring/servicemonitor.yaml", "  endpoints:", "  endpoint:", ErrDecode, `unknown field "spec.endpoint"`},
		// References between objects.
		{"service selects nothing", "single", "base/ispec/service.yaml", "  selector:\n    app.kubernetes.io/name: ispec", "  selector:\n    app.kubernetes.io/name: ispecd", ErrReference, "Service/ispec: spec.selector: selects no pods"},
		{"service target port", "single", "base/ispec/service.yaml", "targetPort: metrics", "targetPort: metric", ErrReference, "Service/ispec: spec.ports.metrics"},
		{"netpol from", "ha", "base/buildkit/networkpolicy.yaml", "              app.kubernetes.io/name: ispec", "              app.kubernetes.io/name: ispec-server", ErrReference, "NetworkPolicy/buildkitd: spec.ingress.from.podSelector"},
		{"monitor port", "single", "components/monitoring/servicemonitor.yaml", "    - port: metrics", "    - port: prometheus", ErrReference, "ServiceMonitor/ispec: spec.endpoints.port"},
		{"mount without volume", "single", "base/ispec/deployment.yaml", "            - name: tmp\n              mountPath: /tmp", "            - name: scratch\n              mountPath: /tmp", ErrReference, `no volume "scratch"`},
		{"probe port", "single", "base/ispec/deployment.yaml", "livenessProbe:\n            grpc:\n              port: 8080", "livenessProbe:\n            grpc:\n              port: 8081", ErrReference, "gRPC probe port 8081 is no container port"},
		// The server configuration against the deployment.
		{"unknown config key", "single", "base/ispec/config.yaml", "max-builds: 4", "max-build: 4", ErrConfig, "max-build: not a key of ispec serve"},
		{"pool larger than statefulset", "ha", "overlays/ha/kustomization.yaml", "  - name: buildkitd\n    count: 3", "  - name: buildkitd\n    count: 2", ErrConfig, "buildkitd-2.buildkitd.ispec-buildkit.svc:1234\": StatefulSet buildkitd has 2 replicas"},
		{"pool smaller than statefulset", "ha", "overlays/ha/kustomization.yaml", "  - name: buildkitd\n    count: 3", "  - name: buildkitd\n    count: 4", ErrConfig, "lists 3 daemons, the buildkitd StatefulSet runs 4"},
		{"wrong service in address", "single", "base/ispec/config.yaml", "tcp://buildkitd-0.buildkitd.ispec-buildkit.svc:1234", "tcp://buildkitd-0.buildkit.ispec-buildkit.svc:1234", ErrConfig, "Service is \"buildkitd\""},
		{"wrong namespace in address", "single", "base/ispec/config.yaml", "tcp://buildkitd-0.buildkitd.ispec-buildkit.svc:1234", "tcp://buildkitd-0.buildkitd:1234", ErrConfig, `no StatefulSet "buildkitd" in namespace "ispec"`},
		// What a cluster would refuse or misplace.
		{"buildkit namespace baseline", "single", "base/namespaces.yaml", "    pod-security.kubernetes.io/enforce: privileged", "    pod-security.kubernetes.io/enforce: baseline", ErrAdmission,
			`ispec-buildkit/StatefulSet/buildkitd: violates PodSecurity "baseline:latest" of namespace ispec-buildkit: forbidden AppArmor profile (container "buildkitd" must not set AppArmor profile type to "Unconfined"), seccompProfile`},
		{"buildkit in ispec's namespace", "ha", "base/buildkit/kustomization.yaml", "namespace: ispec-buildkit", "namespace: ispec", ErrAdmission, `ispec/StatefulSet/buildkitd: violates PodSecurity "restricted:latest"`},
		{"ispec escalates privileges", "single", "base/ispec/deployment.yaml", "            allowPrivilegeEscalation: false\n", "", ErrAdmission, `ispec/Deployment/ispec: violates PodSecurity "restricted:latest" of namespace ispec: allowPrivilegeEscalation != false`},
		{"ispec seccomp", "ha", "base/ispec/deployment.yaml", "        seccompProfile:\n          type: RuntimeDefault\n", "", ErrAdmission, `ispec/Deployment/ispec: violates PodSecurity "restricted:latest" of namespace ispec: seccompProfile`},
		{"redis keeps capabilities", "ha", "overlays/ha/redis.yaml", `              drop: ["ALL"]`, `              drop: ["NET_RAW"]`, ErrAdmission, `ispec/Deployment/redis: violates PodSecurity "restricted:latest" of namespace ispec: unrestricted capabilities`},
		{"redis without namespace", "ha", "overlays/ha/redis.yaml", "  name: redis\n  namespace: ispec\n", "  name: redis\n", ErrAdmission, "/Deployment/redis: no namespace"},
		{"pdb without namespace", "ha", "overlays/ha/buildkitd-pdb.yaml", "  namespace: ispec-buildkit\n", "", ErrAdmission, "/PodDisruptionBudget/buildkitd: no namespace"},
		{"dashboard without namespace", "single", "components/monitoring/kustomization.yaml", "    namespace: ispec\n", "", ErrAdmission, "/ConfigMap/ispec-grafana-dashboard: no namespace"},
		{"namespace not created", "ha", "overlays/ha/redis.yaml", "  name: redis\n  namespace: ispec\n", "  name: redis\n  namespace: ispec-redis\n", ErrAdmission, `ispec-redis/Deployment/redis: namespace "ispec-redis" is not one the deployment creates`},
		{"unknown pod security level", "single", "base/namespaces.yaml", "enforce: restricted", "enforce: strict", ErrAdmission, "/Namespace/ispec"},
		// Volumes.
		{"emptyDir without sizeLimit", "single", "base/ispec/deployment.yaml", "          emptyDir:\n            sizeLimit: 1Gi", "          emptyDir: {}", ErrVolume, "ispec/Deployment/ispec: volume tmp: emptyDir without sizeLimit"},
		{"redis emptyDir without sizeLimit", "ha", "overlays/ha/redis.yaml", "          emptyDir:\n            sizeLimit: 64Mi", "          emptyDir: {}", ErrVolume, "ispec/Deployment/redis: volume data: emptyDir without sizeLimit"},
		{"buildkitd without fsGroup", "ha", "base/buildkit/statefulset.yaml", "        fsGroup: 1000\n", "", ErrVolume, "ispec-buildkit/StatefulSet/buildkitd: volume cache: container buildkitd writes it as uid 1000 but the pod sets no securityContext.fsGroup"},
		// Selectors across namespaces.
		{"monitor in another namespace", "single", "components/monitoring/servicemonitor.yaml", "  namespace: ispec\n", "  namespace: ispec-buildkit\n", ErrReference, "ispec-buildkit/ServiceMonitor/ispec: spec.selector: selects no Service"},
		{"monitor labels", "ha", "components/monitoring/servicemonitor.yaml", "  selector:\n    matchLabels:\n      app.kubernetes.io/name: ispec", "  selector:\n    matchLabels:\n      app.kubernetes.io/name: ispec-server", ErrReference, "ispec/ServiceMonitor/ispec: spec.selector: selects no Service"},
		{"pdb in another namespace", "ha", "overlays/ha/buildkitd-pdb.yaml", "  namespace: ispec-buildkit\n", "  namespace: ispec\n", ErrReference, "ispec/PodDisruptionBudget/buildkitd: spec.selector: selects no pods"},
		{"netpol from another namespace", "single", "base/buildkit/networkpolicy.yaml", "kubernetes.io/metadata.name: ispec", "kubernetes.io/metadata.name: ispec-buildkit", ErrReference, "ispec-buildkit/NetworkPolicy/buildkitd: spec.ingress.from.podSelector: selects no pods"},
		{"netpol from no namespace", "single", "base/buildkit/networkpolicy.yaml", "kubernetes.io/metadata.name: ispec", "kubernetes.io/metadata.name: ispec-server", ErrReference, "spec.ingress.from.namespaceSelector: selects none of the deployment's namespaces"},
		// TLS between ispec and BuildKit.
		{"client without certificate", "ha", "overlays/ha/config.yaml", "buildkit-cert: /etc/ispec/buildkit/tls.crt\nbuildkit-key: /etc/ispec/buildkit/tls.key\n", "", ErrConfig, "demands client certificates (--tlscacert)"},
		{"client TLS to a plain daemon", "single", "base/buildkit/statefulset.yaml", "            - --tlscacert\n            - /etc/buildkit/tls/ca.crt\n            - --tlscert\n            - /etc/buildkit/tls/tls.crt\n            - --tlskey\n            - /etc/buildkit/tls/tls.key\n", "", ErrConfig, "serves no TLS (--tlscert)"},
		{"client key not in its Secret", "single", "base/ispec/config.yaml", "buildkit-key: /etc/ispec/buildkit/tls.key", "buildkit-key: /etc/ispec/buildkit/client.key", ErrConfig, `Secret buildkit-client-tls has no key "client.key"`},
		{"client certificate not mounted", "single", "base/ispec/config.yaml", "buildkit-cert: /etc/ispec/buildkit/tls.crt", "buildkit-cert: /etc/ispec/tls/tls.crt", ErrConfig, "/etc/ispec/tls/tls.crt is on no mounted volume"},
		{"daemon key not mounted", "single", "base/buildkit/statefulset.yaml", "              mountPath: /etc/buildkit/tls\n", "              mountPath: /etc/buildkit/certs\n", ErrConfig, "StatefulSet buildkitd --tlscacert: /etc/buildkit/tls/ca.crt is on no mounted volume"},
		// Termination grace against the build timeout.
		{"ispec grace below shutdown-grace", "single", "base/ispec/deployment.yaml", "terminationGracePeriodSeconds: 1860", "terminationGracePeriodSeconds: 600", ErrConfig, "terminationGracePeriodSeconds (10m0s) is not above shutdown-grace 30m0s"},
		{"shutdown-grace below build-timeout", "ha", "overlays/ha/config.yaml", "build-timeout: 30m", "build-timeout: 2h", ErrConfig, "shutdown-grace: 30m0s is below build-timeout 2h0m0s"},
		{"buildkitd grace below build-timeout", "single", "base/buildkit/statefulset.yaml", "terminationGracePeriodSeconds: 1860", "terminationGracePeriodSeconds: 120", ErrConfig, "StatefulSet buildkitd's terminationGracePeriodSeconds (2m0s) is not above build-timeout 30m0s"},
		{"redis service", "ha", "overlays/ha/config.yaml", "redis://redis:6379/0", "redis://redis-master:6379/0", ErrConfig, `no Service "redis-master"`},
		{"replicas without redis", "single", "base/ispec/deployment.yaml", "  replicas: 1", "  replicas: 2", ErrConfig, "coordinate builds only through Redis"},
		{"cache dir on root fs", "single", "base/ispec/config.yaml", "cache-dir: /var/cache/ispec", "cache-dir: /var/lib/ispec", ErrConfig, "cache-dir: /var/lib/ispec is on no mounted volume"},
		// The dashboard against the server's metrics.
		{"dashboard metric", "single", "components/monitoring/ispec-dashboard.json", "ispec_build_joins_total", "ispec_joins_total", ErrConfig, "ispec_joins_total is not a metric the server exports"},
		{"dashboard histogram", "ha", "components/monitoring/ispec-dashboard.json", "ispec_build_duration_seconds_bucket", "ispec_build_duration_bucket", ErrConfig, "ispec_build_duration_bucket is not a metric"},
		{"dashboard json", "single", "components/monitoring/ispec-dashboard.json", `"panels": [`, `"panels": [,`, ErrConfig, "not JSON"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fs := memFS(t)
			p := filepath.Join("/deploy", tc.file)
			data, err := fs.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(data), tc.old) {
				t.Fatalf("%s does not contain %q; update the test", tc.file, tc.old)
			}
			if err := fs.WriteFile(p, []byte(strings.Replace(string(data), tc.old, tc.new, 1))); err != nil {
				t.Fatal(err)
			}
			objs, err := Render(fs, filepath.Join("/deploy/overlays", tc.overlay))
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			_, err = Check(objs)
			if !errors.Is(err, tc.want) {
				t.Fatalf("want %v, got %v", tc.want, err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error does not name %q:\n%v", tc.msg, err)
			}
		})
	}
}

// TestFixtures renders the manifests under testdata, each a mistake the
// overlays once shipped (its README says which), and checks that each is
// caught, naming the object and what a cluster would do with it.
func TestFixtures(t *testing.T) {
	cases := []struct {
		dir  string
		want error
		msg  string
	}{
		{"baseline-unconfined", ErrAdmission, `ispec/StatefulSet/buildkitd: violates PodSecurity "baseline:latest" of namespace ispec: forbidden AppArmor profile (container "buildkitd" must not set AppArmor profile type to "Unconfined"), seccompProfile (container "buildkitd" must not set securityContext.seccompProfile.type to "Unconfined")`},
		{"missing-namespace", ErrAdmission, "/Deployment/redis: no namespace: kubectl would put it in its context's namespace"},
		{"servicemonitor-selects-nothing", ErrReference, `monitoring/ServiceMonitor/redis: spec.selector: selects no Service in namespace ["monitoring"]`},
		{"pdb-selects-nothing", ErrReference, `ispec/PodDisruptionBudget/buildkitd: spec.selector: selects no pods in namespace ["ispec"]`},
		{"no-fsgroup", ErrVolume, "ispec-buildkit/StatefulSet/buildkitd: volume cache: container buildkitd writes it as uid 1000 but the pod sets no securityContext.fsGroup"},
		{"emptydir-without-limit", ErrVolume, "ispec/Deployment/redis: volume data: emptyDir without sizeLimit"},
	}
	for _, tc := range cases {
		t.Run(tc.dir, func(t *testing.T) {
			objs, err := Render(filesys.MakeFsOnDisk(), filepath.Join("testdata", tc.dir))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Check(objs)
			if !errors.Is(err, tc.want) {
				t.Fatalf("want %v, got %v", tc.want, err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error does not name %q:\n%v", tc.msg, err)
			}
		})
	}
}

// TestPodSecurityLayout pins where each pod runs and under which level:
// ispec (and Redis) under restricted, BuildKit alone in a privileged
// namespace, with the fsGroup its cache volume needs.
func TestPodSecurityLayout(t *testing.T) {
	for _, overlay := range []string{"single", "ha"} {
		t.Run(overlay, func(t *testing.T) {
			s, _ := render(t, overlay)
			levels := map[string]string{}
			for name, ns := range s.Namespaces {
				levels[name] = ns.Labels["pod-security.kubernetes.io/enforce"]
			}
			if levels["ispec"] != "restricted" || levels["ispec-buildkit"] != "privileged" || len(levels) != 2 {
				t.Errorf("namespaces and levels %v, want ispec restricted and ispec-buildkit privileged", levels)
			}
			for _, w := range s.Workloads {
				want := "ispec"
				if w.Name == "buildkitd" {
					want = "ispec-buildkit"
				}
				if w.Namespace != want {
					t.Errorf("%s is in namespace %q, want %q", w.ID(), w.Namespace, want)
				}
			}
			bk := s.Workload("StatefulSet", "buildkitd")
			if sc := bk.Template.Spec.SecurityContext; sc == nil || sc.FSGroup == nil || *sc.FSGroup != 1000 {
				t.Errorf("buildkitd's pod sets no fsGroup 1000: %+v", sc)
			}
			for _, c := range bk.Template.Spec.Containers {
				if sc := c.SecurityContext; sc != nil && sc.Privileged != nil && *sc.Privileged {
					t.Error("buildkitd runs privileged; rootless needs only Unconfined profiles")
				}
			}
		})
	}
}

// TestUserOverlay follows deploy/README.md's "What you must edit": an
// overlay of one's own that replaces the tokens, the registry credentials
// and the configuration and pins every image by digest still passes every
// check, with each replacement in namespace ispec and each image pinned.
func TestUserOverlay(t *testing.T) {
	fs := memFS(t)
	const digest = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	files := map[string]string{
		"kustomization.yaml": `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../base
  - redis.yaml
  - buildkitd-pdb.yaml
components:
  - ../../components/monitoring
replicas:
  - name: ispec
    count: 2
  - name: buildkitd
    count: 2
secretGenerator:
  - name: ispec-tokens
    behavior: replace
    files:
      - tokens=tokens.txt
  - name: ispec-registry-auth
    behavior: replace
    type: kubernetes.io/dockerconfigjson
    files:
      - .dockerconfigjson=config.json
configMapGenerator:
  - name: ispec-config
    behavior: replace
    files:
      - config.yaml
images:
  - name: ghcr.io/ispec-dev/ispec
    newTag: v1.2.3
    digest: ` + digest + `
  - name: moby/buildkit
    digest: ` + digest + `
  - name: redis
    digest: ` + digest + `
`,
		"tokens.txt":  "s3cret-token\n",
		"config.json": `{"auths":{"registry.example.com":{"auth":"dTpw"}}}`,
	}
	// A copy of overlays/ha, as the README says.
	for _, name := range []string{"redis.yaml", "buildkitd-pdb.yaml"} {
		data, err := fs.ReadFile(filepath.Join("/deploy/overlays/ha", name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = string(data)
	}
	cfg, err := fs.ReadFile("/deploy/overlays/ha/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files["config.yaml"] = strings.NewReplacer(
		",tcp://buildkitd-2.buildkitd.ispec-buildkit.svc:1234", "",
		"allowed-registries: registry.example.com", "allowed-registries: registry.example.com/team").Replace(string(cfg))
	for name, data := range files {
		if err := fs.WriteFile(filepath.Join("/deploy/overlays/mine", name), []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	objs, err := Render(fs, "/deploy/overlays/mine")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Check(objs)
	if err != nil {
		t.Fatalf("the README's overlay:\n%v", err)
	}
	for _, sec := range s.Secrets {
		if sec.Namespace != "ispec" {
			t.Errorf("Secret %s in namespace %q", sec.Name, sec.Namespace)
		}
		if strings.HasPrefix(sec.Name, "ispec-tokens") && string(sec.Data["tokens"]) != "s3cret-token\n" {
			t.Errorf("tokens not replaced: %q", sec.Data["tokens"])
		}
	}
	if c := serverConfig(t, s); c["allowed-registries"] != "registry.example.com/team" {
		t.Errorf("configuration not replaced: %v", c["allowed-registries"])
	}
	for _, w := range s.Workloads {
		for _, c := range w.Template.Spec.Containers {
			if !strings.HasSuffix(c.Image, "@"+digest) {
				t.Errorf("%s container %s: image %s is not pinned by digest", w.ID(), c.Name, c.Image)
			}
		}
	}
}

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
	for name, cm := range s.ConfigMaps {
		if strings.HasPrefix(name, "ispec-config") {
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
		want := map[string]int{"Namespace": 1, "ServiceAccount": 1, "Deployment": 1, "StatefulSet": 1,
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
		cfg := serverConfig(t, s)
		if cfg["redis-url"] != "redis://redis:6379/0" {
			t.Errorf("ha: redis-url = %v", cfg["redis-url"])
		}
		if n := len(strings.Split(cfg["buildkit-addr"].(string), ",")); n != 3 {
			t.Errorf("ha: %d BuildKit addresses, want 3", n)
		}
		want := map[string]int{"Namespace": 1, "ServiceAccount": 1, "Deployment": 2, "StatefulSet": 1,
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
		{"pool larger than statefulset", "ha", "overlays/ha/kustomization.yaml", "  - name: buildkitd\n    count: 3", "  - name: buildkitd\n    count: 2", ErrConfig, "buildkitd-2.buildkitd:1234\": StatefulSet buildkitd has 2 replicas"},
		{"pool smaller than statefulset", "ha", "overlays/ha/kustomization.yaml", "  - name: buildkitd\n    count: 3", "  - name: buildkitd\n    count: 4", ErrConfig, "lists 3 daemons, the buildkitd StatefulSet runs 4"},
		{"wrong service in address", "single", "base/ispec/config.yaml", "tcp://buildkitd-0.buildkitd:1234", "tcp://buildkitd-0.buildkit:1234", ErrConfig, "Service is \"buildkitd\""},
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

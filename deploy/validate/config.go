package validate

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// ErrConfig marks a server configuration or dashboard that does not fit
// the deployment or the server.
var ErrConfig = errors.New("configuration does not fit")

// ConfigError is one problem with the server configuration or dashboard.
type ConfigError struct {
	Where string // e.g. "ConfigMap/ispec-config config.yaml: buildkit-addr"
	Msg   string
}

func (e *ConfigError) Error() string { return e.Where + ": " + e.Msg }
func (e *ConfigError) Unwrap() error { return ErrConfig }

// ServerKeys are the configuration keys of `ispec serve`.
func ServerKeys() []string {
	return []string{"listen", "metrics-listen", "buildkit-addr", "cache-dir", "token-file",
		"allowed-registries", "max-builds", "max-queue", "build-timeout", "failure-ttl",
		"tls-cert", "tls-key", "client-ca", "redis-url", "log-format", "tls-terminated-by-proxy"}
}

// CheckServerConfig checks the config.yaml of the ConfigMap the ispec
// Deployment mounts: known keys only; each BuildKit address a pod of the
// buildkitd StatefulSet through its headless Service; the Redis URL a
// Service of the deployment; cache-dir and token-file on mounted volumes.
func CheckServerConfig(s *Set) error {
	w := s.Workload("Deployment", "ispec")
	if w == nil {
		return &ConfigError{Where: "Deployment/ispec", Msg: "missing"}
	}
	var cm *corev1.ConfigMap
	mounts := map[string]bool{}
	for _, c := range w.Template.Spec.Containers {
		for _, m := range c.VolumeMounts {
			mounts[m.MountPath] = true
		}
	}
	for _, v := range w.Template.Spec.Volumes {
		if v.ConfigMap != nil {
			cm = s.ConfigMaps[v.ConfigMap.Name]
		}
	}
	if cm == nil || cm.Data["config.yaml"] == "" {
		return &ConfigError{Where: "Deployment/ispec", Msg: "mounts no ConfigMap with a config.yaml"}
	}
	where := "ConfigMap/" + cm.Name + " config.yaml"
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(cm.Data["config.yaml"]), &cfg); err != nil {
		return &ConfigError{Where: where, Msg: err.Error()}
	}
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, &ConfigError{Where: where + ": " + key, Msg: fmt.Sprintf(format, args...)})
	}
	for k := range cfg {
		if !slices.Contains(ServerKeys(), k) {
			bad(k, "not a key of ispec serve (known: %s)", strings.Join(ServerKeys(), ", "))
		}
	}
	str := func(k string) string { v, _ := cfg[k].(string); return v }
	addrRe := regexp.MustCompile(`^tcp://([a-z0-9-]+)-([0-9]+)\.([a-z0-9-]+):([0-9]+)$`)
	addrs := strings.Split(str("buildkit-addr"), ",")
	seen := map[string]bool{}
	for _, a := range addrs {
		a = strings.TrimSpace(a)
		m := addrRe.FindStringSubmatch(a)
		if m == nil {
			bad("buildkit-addr", "%q is not tcp://STATEFULSET-N.SERVICE:PORT", a)
			continue
		}
		if seen[a] {
			bad("buildkit-addr", "%q listed twice", a)
		}
		seen[a] = true
		sts := s.Workload("StatefulSet", m[1])
		var n int32
		fmt.Sscan(m[2], &n)
		switch {
		case sts == nil:
			bad("buildkit-addr", "%q: no StatefulSet %q", a, m[1])
		case sts.ServiceName != m[3]:
			bad("buildkit-addr", "%q: StatefulSet %s's Service is %q", a, m[1], sts.ServiceName)
		case n >= sts.Replicas:
			bad("buildkit-addr", "%q: StatefulSet %s has %d replicas", a, m[1], sts.Replicas)
		case !sts.containerPort("", atoi32(m[4])):
			bad("buildkit-addr", "%q: port %s is not a port of StatefulSet %s", a, m[4], m[1])
		}
	}
	if sts := s.Workload("StatefulSet", "buildkitd"); sts != nil && int(sts.Replicas) != len(seen) {
		bad("buildkit-addr", "lists %d daemons, the buildkitd StatefulSet runs %d", len(seen), sts.Replicas)
	}
	if u := str("redis-url"); u != "" {
		host := strings.TrimPrefix(u, "redis://")
		host, _, _ = strings.Cut(host, "/")
		host, _, _ = strings.Cut(host, ":")
		found := false
		for _, svc := range s.Services {
			found = found || svc.Name == host
		}
		if !found {
			bad("redis-url", "no Service %q", host)
		}
	}
	if w.Replicas > 1 && str("redis-url") == "" {
		bad("redis-url", "%d replicas coordinate builds only through Redis; set redis-url", w.Replicas)
	}
	for _, k := range []string{"cache-dir", "token-file"} {
		p := str(k)
		if p == "" {
			bad(k, "not set")
			continue
		}
		if !mountedUnder(mounts, p) {
			bad(k, "%s is on no mounted volume (the root filesystem is read-only)", p)
		}
	}
	return errors.Join(errs...)
}

func atoi32(s string) int32 {
	var n int32
	fmt.Sscan(s, &n)
	return n
}

func mountedUnder(mounts map[string]bool, p string) bool {
	for m := range mounts {
		if p == m || strings.HasPrefix(p, strings.TrimSuffix(m, "/")+"/") {
			return true
		}
	}
	return false
}

// MetricNames are the series the server exports (the ispec_ metrics and
// go-grpc-middleware's server metrics), histogram series included.
func MetricNames() []string {
	names := []string{"ispec_builds_total", "ispec_build_joins_total", "ispec_lookups_total",
		"ispec_builds_in_flight", "ispec_build_queue_depth", "ispec_upload_bytes_total",
		"ispec_coordination_degraded", "ispec_buildkit_builds_total",
		"grpc_server_started_total", "grpc_server_handled_total",
		"grpc_server_msg_received_total", "grpc_server_msg_sent_total"}
	for _, h := range []string{"ispec_build_duration_seconds", "grpc_server_handling_seconds"} {
		names = append(names, h+"_bucket", h+"_sum", h+"_count")
	}
	return names
}

// dashboard is the part of a Grafana dashboard the checks read.
type dashboard struct {
	UID    string `json:"uid"`
	Title  string `json:"title"`
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

// CheckDashboards checks every ConfigMap labelled grafana_dashboard: each
// file is a dashboard in JSON whose every panel queries at least one of the
// server's metrics and no other ispec_ or grpc_ series. It returns how
// many dashboards it read.
func CheckDashboards(s *Set) (int, error) {
	var errs []error
	n := 0
	nameRe := regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	for _, cm := range s.ConfigMaps {
		if cm.Labels["grafana_dashboard"] == "" {
			continue
		}
		for file, data := range cm.Data {
			n++
			where := "ConfigMap/" + cm.Name + " " + file
			var d dashboard
			if err := json.Unmarshal([]byte(data), &d); err != nil {
				errs = append(errs, &ConfigError{Where: where, Msg: "not JSON: " + err.Error()})
				continue
			}
			if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
				errs = append(errs, &ConfigError{Where: where, Msg: "a dashboard needs a uid, a title and panels"})
			}
			for _, p := range d.Panels {
				known := 0
				for _, t := range p.Targets {
					for _, name := range nameRe.FindAllString(t.Expr, -1) {
						switch {
						case slices.Contains(MetricNames(), name):
							known++
						case strings.HasPrefix(name, "ispec_") || strings.HasPrefix(name, "grpc_server_"):
							errs = append(errs, &ConfigError{Where: where + ": panel " + p.Title,
								Msg: fmt.Sprintf("%s is not a metric the server exports", name)})
						}
					}
				}
				if known == 0 {
					errs = append(errs, &ConfigError{Where: where + ": panel " + p.Title, Msg: "queries none of the server's metrics"})
				}
			}
		}
	}
	return n, errors.Join(errs...)
}

// Check decodes rendered objects strictly and runs every check on them. It
// returns the decoded Set for further assertions.
func Check(objs []Object) (*Set, error) {
	decoded, err := Decode(objs)
	if err != nil {
		return nil, err
	}
	s := Index(decoded)
	errRefs := CheckRefs(s)
	errCfg := CheckServerConfig(s)
	_, errDash := CheckDashboards(s)
	return s, errors.Join(errRefs, errCfg, errDash)
}

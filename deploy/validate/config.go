package validate

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

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
	return []string{"listen", "metrics-listen", "buildkit-addr", "buildkit-ca", "buildkit-cert", "buildkit-key",
		"max-builds-per-daemon", "cache-dir", "token-file", "allowed-registries", "max-builds", "max-queue",
		"build-timeout", "failure-ttl", "shutdown-grace", "tls-cert", "tls-key", "client-ca", "tls-terminated-by-proxy",
		"redis-url", "lease-ttl", "log-format", "upload-dir", "cache-registry", "registry-cache", "pip-netrc",
		"insecure-registries"}
}

// Defaults of `ispec serve` the checks need when config.yaml omits them.
const (
	defaultBuildTimeout  = time.Hour
	defaultShutdownGrace = 10 * time.Minute
)

// CheckServerConfig checks the config.yaml of the ConfigMap the ispec
// Deployment mounts: known keys only; each BuildKit address a pod of a
// StatefulSet through its headless Service (in the namespace the address
// names, else ispec's); TLS to BuildKit on both sides or neither, its files
// mounted; the Redis URL a Service of the deployment; cache-dir and
// token-file on mounted volumes; the pods' termination grace long enough
// for a build to finish.
func CheckServerConfig(s *Set) error {
	w := s.Workload("Deployment", "ispec")
	if w == nil {
		return &ConfigError{Where: "Deployment/ispec", Msg: "missing"}
	}
	var cm *corev1.ConfigMap
	mounts := map[string]string{} // mount path -> volume
	for _, c := range w.Template.Spec.Containers {
		for _, m := range c.VolumeMounts {
			mounts[m.MountPath] = m.Name
		}
	}
	for _, v := range w.Template.Spec.Volumes {
		if v.ConfigMap != nil {
			cm = s.ConfigMaps[key(w.Namespace, v.ConfigMap.Name)]
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
	daemons := checkBuildkitAddrs(s, w.Namespace, str("buildkit-addr"), bad)
	checkBuildkitTLS(s, w, mounts, daemons, str, bad)
	if u := str("redis-url"); u != "" {
		host := strings.TrimPrefix(u, "redis://")
		host, _, _ = strings.Cut(host, "/")
		host, _, _ = strings.Cut(host, ":")
		name, ns, _ := strings.Cut(host, ".")
		if ns == "" {
			ns = w.Namespace
		}
		ns, _, _ = strings.Cut(ns, ".")
		if s.service(ns, name) == nil {
			bad("redis-url", "no Service %q in namespace %q", name, ns)
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
		if _, ok := mountedUnder(mounts, p); !ok {
			bad(k, "%s is on no mounted volume (the root filesystem is read-only)", p)
		}
	}
	checkGrace(w, daemons, cfg, bad)
	return errors.Join(errs...)
}

// checkBuildkitAddrs checks each address of buildkit-addr against the
// StatefulSets and returns those the addresses name. An address is
// tcp://STATEFULSET-N.SERVICE[.NAMESPACE[.svc[.cluster.local]]]:PORT; without
// a namespace it is ispec's own (ns).
func checkBuildkitAddrs(s *Set, ns, list string, bad func(key, format string, args ...any)) []*Workload {
	addrRe := regexp.MustCompile(`^tcp://([a-z0-9-]+)-([0-9]+)\.([a-z0-9-]+)(?:\.([a-z0-9-]+)(?:\.svc(?:\.cluster\.local)?)?)?:([0-9]+)$`)
	seen := map[string]bool{}
	var daemons []*Workload
	count := map[*Workload]int{}
	for _, a := range strings.Split(list, ",") {
		a = strings.TrimSpace(a)
		m := addrRe.FindStringSubmatch(a)
		if m == nil {
			bad("buildkit-addr", "%q is not tcp://STATEFULSET-N.SERVICE[.NAMESPACE.svc]:PORT", a)
			continue
		}
		if seen[a] {
			bad("buildkit-addr", "%q listed twice", a)
		}
		seen[a] = true
		stsNS := m[4]
		if stsNS == "" {
			stsNS = ns
		}
		var sts *Workload
		for i := range s.Workloads {
			if w := &s.Workloads[i]; w.Kind == "StatefulSet" && w.Name == m[1] && w.Namespace == stsNS {
				sts = w
			}
		}
		n := atoi32(m[2])
		switch {
		case sts == nil:
			bad("buildkit-addr", "%q: no StatefulSet %q in namespace %q", a, m[1], stsNS)
		case sts.ServiceName != m[3]:
			bad("buildkit-addr", "%q: StatefulSet %s's Service is %q", a, m[1], sts.ServiceName)
		case n >= sts.Replicas:
			bad("buildkit-addr", "%q: StatefulSet %s has %d replicas", a, m[1], sts.Replicas)
		case !sts.containerPort("", atoi32(m[5])):
			bad("buildkit-addr", "%q: port %s is not a port of StatefulSet %s", a, m[5], m[1])
		default:
			if count[sts] == 0 {
				daemons = append(daemons, sts)
			}
			count[sts]++
		}
	}
	for _, sts := range daemons {
		if int(sts.Replicas) != count[sts] {
			bad("buildkit-addr", "lists %d daemons, the %s StatefulSet runs %d", count[sts], sts.Name, sts.Replicas)
		}
	}
	if len(daemons) == 0 {
		if sts := s.Workload("StatefulSet", "buildkitd"); sts != nil {
			bad("buildkit-addr", "lists 0 daemons, the buildkitd StatefulSet runs %d", sts.Replicas)
		}
	}
	return daemons
}

// checkBuildkitTLS checks that ispec and the daemons agree on TLS: a
// daemon started with --tlscacert refuses a client without a certificate,
// and one without TLS refuses a TLS client. Each side's files must be on a
// mounted volume whose Secret has them.
func checkBuildkitTLS(s *Set, w *Workload, mounts map[string]string, daemons []*Workload, str func(string) string, bad func(key, format string, args ...any)) {
	client := str("buildkit-ca") != "" || str("buildkit-cert") != "" || str("buildkit-key") != ""
	if client {
		for _, k := range []string{"buildkit-ca", "buildkit-cert", "buildkit-key"} {
			if str(k) == "" {
				bad(k, "not set, though the other buildkit TLS settings are")
				continue
			}
			checkMountedFile(s, w, mounts, str(k), func(format string, args ...any) { bad(k, format, args...) })
		}
	}
	for _, d := range daemons {
		args := map[string]string{}
		var c corev1.Container
		if len(d.Template.Spec.Containers) > 0 {
			c = d.Template.Spec.Containers[0]
		}
		for i, a := range c.Args {
			if strings.HasPrefix(a, "--tls") && i+1 < len(c.Args) {
				args[a] = c.Args[i+1]
			}
		}
		switch {
		case args["--tlscacert"] != "" && str("buildkit-cert") == "":
			bad("buildkit-cert", "StatefulSet %s demands client certificates (--tlscacert): set buildkit-ca, buildkit-cert and buildkit-key", d.Name)
		case args["--tlscert"] == "" && client:
			bad("buildkit-ca", "StatefulSet %s serves no TLS (--tlscert), ispec would speak TLS to it", d.Name)
		}
		dm := map[string]string{}
		for _, m := range c.VolumeMounts {
			dm[m.MountPath] = m.Name
		}
		for _, flag := range []string{"--tlscacert", "--tlscert", "--tlskey"} {
			if p := args[flag]; p != "" {
				checkMountedFile(s, d, dm, p, func(format string, args ...any) {
					bad("buildkit-addr", "StatefulSet %s %s: "+format, append([]any{d.Name, flag}, args...)...)
				})
			}
		}
	}
}

// checkMountedFile checks that file p of workload w is on a mounted
// volume, and when that volume is a Secret, that the Secret has the key.
func checkMountedFile(s *Set, w *Workload, mounts map[string]string, p string, bad func(format string, args ...any)) {
	mp, ok := mountedUnder(mounts, p)
	if !ok {
		bad("%s is on no mounted volume", p)
		return
	}
	for _, v := range w.Template.Spec.Volumes {
		if v.Name != mounts[mp] || v.Secret == nil {
			continue
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, mp), "/")
		has, known := secretKeys(s, key(w.Namespace, v.Secret.SecretName))
		for _, it := range v.Secret.Items {
			if it.Path == rel {
				rel = it.Key
			}
		}
		if known && !slices.Contains(has, rel) {
			bad("%s: Secret %s has no key %q", p, v.Secret.SecretName, rel)
		}
	}
}

// checkGrace checks that no pod is killed before a build it runs may
// finish: ispec lets running builds go on for shutdown-grace after
// SIGTERM, which must cover build-timeout, and its pod's
// terminationGracePeriodSeconds must be above that; a BuildKit daemon
// waits for its running builds on SIGTERM, so its grace must cover
// build-timeout too.
func checkGrace(w *Workload, daemons []*Workload, cfg map[string]any, bad func(key, format string, args ...any)) {
	dur := func(k string, def time.Duration) time.Duration {
		v, ok := cfg[k].(string)
		if !ok {
			return def
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			bad(k, "%q is not a duration: %v", v, err)
			return def
		}
		return d
	}
	timeout := dur("build-timeout", defaultBuildTimeout)
	grace := dur("shutdown-grace", defaultShutdownGrace)
	podGrace := func(w *Workload) time.Duration {
		if g := w.Template.Spec.TerminationGracePeriodSeconds; g != nil {
			return time.Duration(*g) * time.Second
		}
		return 30 * time.Second
	}
	if grace < timeout {
		bad("shutdown-grace", "%s is below build-timeout %s: a drain cuts the builds that run longer", grace, timeout)
	}
	if g := podGrace(w); g <= grace {
		bad("shutdown-grace", "Deployment %s's terminationGracePeriodSeconds (%s) is not above shutdown-grace %s: Kubernetes kills running builds", w.Name, g, grace)
	}
	for _, d := range daemons {
		if g := podGrace(d); g <= timeout {
			bad("build-timeout", "StatefulSet %s's terminationGracePeriodSeconds (%s) is not above build-timeout %s: a rollout kills running builds", d.Name, g, timeout)
		}
	}
}

func atoi32(s string) int32 {
	var n int32
	fmt.Sscan(s, &n)
	return n
}

// mountedUnder returns the mount path of mounts that holds p.
func mountedUnder(mounts map[string]string, p string) (string, bool) {
	for m := range mounts {
		if p == m || strings.HasPrefix(p, strings.TrimSuffix(m, "/")+"/") {
			return m, true
		}
	}
	return "", false
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
	errNS := CheckNamespaces(objs)
	errPSA := CheckPodSecurity(s)
	errVol := CheckVolumes(s)
	errRefs := CheckRefs(s)
	errCfg := CheckServerConfig(s)
	_, errDash := CheckDashboards(s)
	return s, errors.Join(errNS, errPSA, errVol, errRefs, errCfg, errDash)
}

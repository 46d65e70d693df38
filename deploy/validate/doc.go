// Package validate renders ispec's Kubernetes deployment (the kustomize
// overlays under deploy/) and checks every object offline: each is decoded
// strictly against its Kubernetes API type (or the Prometheus Operator's,
// for the ServiceMonitor), so unknown or misspelled fields fail; every
// namespaced object must name a namespace the deployment creates; every pod
// template is evaluated against its namespace's enforced Pod Security level
// with the Pod Security admission plugin's own checks; emptyDirs need a size
// limit and non-root writers of persistent volumes an fsGroup; then the
// objects are checked against each other within and across namespaces
// (selectors, ports, volumes, Secrets, the server's configuration, TLS
// between ispec and BuildKit, termination grace against the build timeout)
// and the Grafana dashboard against the metrics the server exports.
//
// It lives in its own Go module so that the Kubernetes dependencies do not
// weigh on ispec's.
package validate

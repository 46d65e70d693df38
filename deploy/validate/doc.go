// Package validate renders ispec's Kubernetes deployment (the kustomize
// overlays under deploy/) and checks every object offline: each is decoded
// strictly against its Kubernetes API type (or the Prometheus Operator's,
// for the ServiceMonitor), so unknown or misspelled fields fail; then the
// objects are checked against each other (selectors, ports, volumes, the
// server's configuration) and the Grafana dashboard against the metrics the
// server exports.
//
// It lives in its own Go module so that the Kubernetes dependencies do not
// weigh on ispec's.
package validate

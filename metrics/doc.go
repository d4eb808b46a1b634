// Package metrics serves the daemon's figures on a Prometheus /metrics
// endpoint (metrics_listen), with the official client library.
//
// The figures are read when Prometheus scrapes, from the same snapshot
// `currentctl metrics` prints (ctl.Families): the data path keeps its
// atomic counters and pays nothing per packet for the endpoint. Every
// family the control socket exposes is here with the same name, type and
// meaning, so a dashboard works on either; the endpoint adds the Go
// runtime and process families of the client library.
package metrics

// Package ctl is the control socket of a running current daemon: the
// server the daemon runs for each interface, the client currentctl uses,
// and the protocol between them (docs/ctl.md specifies it).
//
// The daemon implements Backend, calls Listen for its interface and runs
// Serve; the server authenticates callers (file permissions and
// SO_PEERCRED: root and the daemon's user only), bounds and validates every
// request before the Backend sees it, and maps the Backend's errors to
// typed protocol errors. Nothing a client sends can reach the tunnel
// except through a Backend method with checked arguments: a malformed,
// oversized or unauthorized request gets an error reply and that is all.
//
// The protocol is newline-delimited JSON over a unix stream socket: one
// request object per line, answered by one response object per line, in
// order. It is versioned, so that scripts written against it keep working.
package ctl

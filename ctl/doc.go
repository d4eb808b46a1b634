// Package ctl is the control socket of a running current daemon: the
// server the daemon runs for each interface, the client currentctl uses,
// and the protocol between them (docs/ctl.md specifies it).
//
// The daemon implements Backend, calls Listen for its interface and runs
// Serve; the server authenticates callers (file permissions and the
// kernel's peer credentials: root and the daemon's user only), bounds and
// validates every request before the Backend sees it, and maps the
// Backend's errors to typed protocol errors. Nothing a client sends can reach the tunnel
// except through a Backend method with checked arguments: a malformed,
// oversized or unauthorized request gets an error reply and that is all.
//
// Platform seam: the one thing here that differs between systems is how
// the kernel names the client of a unix socket connection, behind
// PeerCred: SO_PEERCRED on Linux (peercred_linux.go), LOCAL_PEERCRED's
// struct xucred on macOS and FreeBSD (peercred_bsd.go), with the pid from
// LOCAL_PEERPID on macOS (peerpid_darwin.go) and none on FreeBSD
// (peerpid_freebsd.go).
//
// The protocol is newline-delimited JSON over a unix stream socket: one
// request object per line, answered by one response object per line, in
// order. It is versioned, so that scripts written against it keep working.
package ctl

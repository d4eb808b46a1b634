//go:build darwin || freebsd

package ctl

// DefaultDir is where control sockets live. macOS has no /run (its root
// is read-only) and FreeBSD's equivalent is /var/run. A socket left from
// before a reboot is found stale and replaced by Listen.
const DefaultDir = "/var/run/current"

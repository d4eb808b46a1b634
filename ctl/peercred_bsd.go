//go:build darwin || freebsd

package ctl

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// xucredVersion is XUCRED_VERSION of <sys/ucred.h>, the same on macOS and
// FreeBSD; another version would lay the structure out differently.
const xucredVersion = 0

// peerCred asks for LOCAL_PEERCRED, the effective uid as of connect (a
// struct xucred), and where there is one the pid (peerPid).
func peerCred(fd int) (*Cred, error) {
	xc, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return nil, fmt.Errorf("LOCAL_PEERCRED: %w", err)
	}
	if xc.Version != xucredVersion {
		return nil, fmt.Errorf("LOCAL_PEERCRED: struct xucred version %d, want %d", xc.Version, xucredVersion)
	}
	return &Cred{Uid: xc.Uid, Pid: peerPid(fd)}, nil
}

package ctl

import "golang.org/x/sys/unix"

// peerPid asks for LOCAL_PEERPID, 0 if the kernel does not say.
func peerPid(fd int) int32 {
	pid, err := unix.GetsockoptInt(fd, unix.SOL_LOCAL, unix.LOCAL_PEERPID)
	if err != nil {
		return 0
	}
	return int32(pid)
}

package ctl

// peerPid is 0: FreeBSD 13 and later put the pid in struct xucred's
// cr_pid, but in a union that golang.org/x/sys/unix leaves unnamed, and
// there is no LOCAL_PEERPID. Only log lines use the pid.
func peerPid(int) int32 { return 0 }

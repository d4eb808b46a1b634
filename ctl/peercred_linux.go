package ctl

import "golang.org/x/sys/unix"

// peerCred asks for SO_PEERCRED: uid and pid as of connect.
func peerCred(fd int) (*Cred, error) {
	uc, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		return nil, err
	}
	return &Cred{Uid: uc.Uid, Pid: uc.Pid}, nil
}

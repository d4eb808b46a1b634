//go:build darwin || freebsd

package routing

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// The routing socket: messages (rtmsg.go) written to and read from an
// AF_ROUTE socket.

// rtSeq numbers this process's requests, so that an answer can be told
// from the other messages every routing socket receives.
var rtSeq atomic.Int32

// getTimeout bounds the wait for the kernel's answer to RTM_GET.
const getTimeoutSeconds = 2

// writeRoute sends an RTM_ADD, RTM_DELETE or RTM_CHANGE. The kernel
// reports the outcome as write's error (EEXIST, ESRCH, ...).
func writeRoute(m *routeMsg) error {
	fd, err := unix.Socket(unix.AF_ROUTE, unix.SOCK_RAW, unix.AF_UNSPEC)
	if err != nil {
		return fmt.Errorf("routing socket: %w", err)
	}
	defer unix.Close(fd)
	// This socket only talks; it must not queue every route change on
	// the system while it does.
	_ = unix.Shutdown(fd, unix.SHUT_RD)
	m.Seq = rtSeq.Add(1)
	b, err := layout.marshal(m)
	if err != nil {
		return err
	}
	if _, err := unix.Write(fd, b); err != nil {
		return err
	}
	return nil
}

// getRoute sends an RTM_GET and returns the kernel's answer. ESRCH (no
// such route) is returned as the error.
func getRoute(m *routeMsg) (*routeMsg, error) {
	fd, err := unix.Socket(unix.AF_ROUTE, unix.SOCK_RAW, unix.AF_UNSPEC)
	if err != nil {
		return nil, fmt.Errorf("routing socket: %w", err)
	}
	defer unix.Close(fd)
	tv := unix.Timeval{Sec: getTimeoutSeconds}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return nil, fmt.Errorf("routing socket: %w", err)
	}
	m.Seq = rtSeq.Add(1)
	b, err := layout.marshal(m)
	if err != nil {
		return nil, err
	}
	if _, err := unix.Write(fd, b); err != nil {
		return nil, err
	}
	pid := int32(os.Getpid())
	buf := make([]byte, 2048)
	// Other messages arrive on the same socket; a bounded number of
	// them is read past before giving up, as each read may wait up to
	// the timeout.
	for range 64 {
		n, err := unix.Read(fd, buf)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) {
				return nil, errors.New("routing socket: no answer to RTM_GET")
			}
			return nil, fmt.Errorf("routing socket: %w", err)
		}
		got, _, perr := layout.parse(buf[:n])
		if perr != nil || got.Type != rtmGet || got.Pid != pid || got.Seq != m.Seq {
			continue
		}
		if got.Errno != 0 {
			return nil, unix.Errno(got.Errno)
		}
		return got, nil
	}
	return nil, errors.New("routing socket: no answer to RTM_GET among the messages read")
}

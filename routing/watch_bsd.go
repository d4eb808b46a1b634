//go:build darwin || freebsd

package routing

import (
	"errors"
	"fmt"
	"os"
	"slices"

	"golang.org/x/sys/unix"
)

// WatchAddresses calls changed after every change to the host's IP
// addresses or interfaces (RTM_NEWADDR, RTM_DELADDR, RTM_IFINFO on the
// routing socket), until stop is closed; see the Linux version for what
// the daemon does with it. done is closed when the watch has ended.
func WatchAddresses(stop <-chan struct{}, changed func()) (done <-chan struct{}, err error) {
	return watchRoutingSocket(stop, changed, rtmNewAddr, rtmDelAddr, rtmIfInfo)
}

// WatchRoutes calls changed after every route added, deleted or changed
// by anyone, until stop is closed. A full tunnel's endpoint routes follow
// the underlay's default route with it (Link.RefreshEndpoints).
func WatchRoutes(stop <-chan struct{}, changed func()) (done <-chan struct{}, err error) {
	return watchRoutingSocket(stop, changed, rtmAdd, rtmDelete, rtmChange)
}

func watchRoutingSocket(stop <-chan struct{}, changed func(), types ...uint8) (<-chan struct{}, error) {
	fd, err := unix.Socket(unix.AF_ROUTE, unix.SOCK_RAW, unix.AF_UNSPEC)
	if err != nil {
		return nil, fmt.Errorf("watch: routing socket: %w", err)
	}
	// Non-blocking, the file is run by Go's poller, and closing it ends
	// a pending read.
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("watch: routing socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), "routing socket")
	ended := make(chan struct{})
	go func() {
		<-stop
		f.Close()
	}()
	go func() {
		defer close(ended)
		buf := make([]byte, 4096)
		for {
			n, err := f.Read(buf)
			if err != nil {
				// Closed by stop, or the socket failed. ENOBUFS says
				// messages were lost: something changed.
				if errors.Is(err, unix.ENOBUFS) {
					changed()
					continue
				}
				return
			}
			if m, _, err := layout.parse(buf[:n]); err == nil && slices.Contains(types, m.Type) {
				changed()
			}
		}
	}()
	return ended, nil
}

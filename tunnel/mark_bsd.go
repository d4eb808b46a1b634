//go:build darwin || freebsd

package tunnel

import "syscall"

// markControl marks nothing: there is no SO_MARK here, and the full
// tunnel does not need one (mark.go).
func markControl(uint32) func(network, address string, c syscall.RawConn) error {
	return nil
}

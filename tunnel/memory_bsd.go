//go:build darwin || freebsd

package tunnel

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// memoryLimit is the machine's RAM in bytes, 0 if unknown. Neither
// system has a per-service memory limit that a process can read the way
// Linux's cgroup memory.max is read.
func memoryLimit() uint64 {
	name := "hw.physmem"
	if runtime.GOOS == "darwin" {
		name = "hw.memsize"
	}
	n, err := unix.SysctlUint64(name)
	if err != nil {
		return 0
	}
	return n
}

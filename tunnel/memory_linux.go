package tunnel

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// memoryLimit is the memory this process may use, in bytes: the machine's
// RAM, or the memory.max of our cgroup (cgroup v2: a systemd MemoryMax=,
// a container's limit) when that is lower; 0 if neither is known.
func memoryLimit() uint64 {
	var si unix.Sysinfo_t
	var ram uint64
	if unix.Sysinfo(&si) == nil {
		ram = uint64(si.Totalram) * uint64(si.Unit)
	}
	if cg := cgroupMemoryMax(); cg > 0 && (ram == 0 || cg < ram) {
		return cg
	}
	return ram
}

// cgroupMemoryMax reads memory.max of the process's cgroup, 0 if there is
// none ("max", cgroup v1, or not mounted).
func cgroupMemoryMax() uint64 {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		path, ok := strings.CutPrefix(strings.TrimSpace(line), "0::")
		if !ok {
			continue
		}
		v, err := os.ReadFile(filepath.Join("/sys/fs/cgroup", path, "memory.max"))
		if err != nil {
			return 0
		}
		n, err := strconv.ParseUint(strings.TrimSpace(string(v)), 10, 64)
		if err != nil {
			return 0 // "max"
		}
		return n
	}
	return 0
}

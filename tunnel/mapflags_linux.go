package tunnel

import "golang.org/x/sys/unix"

// markMapping flags a mapping of packet memory: MADV_DONTDUMP keeps the
// packets (plaintext, on the way to the TUN) out of core dumps, and the
// receive slots get MADV_WIPEONFORK besides. The flags show in
// /proc/PID/smaps ("dd", "wf" in VmFlags) and keep the kernel from
// merging the mappings with the Go heap's, so that bench/cmd/hubload can
// tell the resident size of the pool and of the slots from the rest of
// the daemon's memory.
func markMapping(mem []byte, slots bool) error {
	if err := unix.Madvise(mem, unix.MADV_DONTDUMP); err != nil || !slots {
		return err
	}
	return unix.Madvise(mem, unix.MADV_WIPEONFORK)
}

package tunnel

import (
	"runtime/debug"
	"time"
)

// The reclaimer gives the OS back the memory of buffers the data path did
// not need for a whole interval: every reclaimInterval it madvises away
// the pages of the buffers that stayed at the bottom of the pool's free
// list since the last look (bufPool.reclaim). During steady load those
// are the buffers beyond the working set, usually none; once a burst
// ends, all of them, so the resident set is back to idle within two
// intervals. A buffer given back costs a page fault per page when it is
// next written, which is why it is not done on release.
//
// The Go heap grows during a burst too (the allocations per datagram of
// wireguard/conn, sessions' scratch), and the runtime returns its freed
// pages to the OS only gradually: after a reclaim that found at least a
// chunk's worth of buffers idle, which takes a burst that ended, the
// reclaimer also has the runtime return them at once
// (debug.FreeOSMemory), at most every freeOSInterval, since that forces a
// collection.
const (
	reclaimInterval = 5 * time.Second
	freeOSInterval  = 30 * time.Second
)

func (d *Device) reclaimLoop() {
	t := time.NewTicker(reclaimInterval)
	defer t.Stop()
	var freed time.Time
	for {
		select {
		case now := <-t.C:
			d.slotEpoch.Add(1) // the readers give their slots back (readers.go)
			n, peak := d.buf.pool.reclaim()
			if n == 0 {
				continue
			}
			d.log.Debug("packet buffers given back", "buffers", n, "peak", peak)
			if n >= chunkBufs && now.Sub(freed) >= freeOSInterval {
				freed = now
				debug.FreeOSMemory()
			}
		case <-d.ctx.Done():
			return
		}
	}
}

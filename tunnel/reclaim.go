package tunnel

import "time"

// The reclaimer gives the OS back the memory of buffers the data path did
// not need for a whole interval: every reclaimInterval it madvises away
// the pages of the buffers that stayed at the bottom of the pool's free
// list since the last look (bufPool.reclaim). During steady load those
// are the buffers beyond the working set, usually none; once a burst
// ends, all of them, so the resident set is back to idle within two
// intervals. A buffer given back costs a page fault per page when it is
// next written, which is why it is not done on release.
const reclaimInterval = 5 * time.Second

func (d *Device) reclaimLoop() {
	t := time.NewTicker(reclaimInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if n, peak := d.buf.pool.reclaim(); n > 0 {
				d.log.Debug("packet buffers given back", "buffers", n, "peak", peak)
			}
		case <-d.ctx.Done():
			return
		}
	}
}

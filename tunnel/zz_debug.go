package tunnel

// TEMPORARY instrumentation for sizing measurements; not to be committed.

import (
	"os"
	"runtime"
	"strconv"
	"time"
)

func init() { debugHook = startBufDebug }

func startBufDebug(d *Device) {
	if v, err := strconv.Atoi(os.Getenv("CURRENT_BUFCAP")); err == nil && v > 0 {
		d.setBufferCap(v)
	}
	if v, err := strconv.Atoi(os.Getenv("CURRENT_QUEUE")); err == nil && v > 0 {
		d.buf.queue.Store(int64(v))
	}
	if v, err := strconv.Atoi(os.Getenv("CURRENT_WRITER")); err == nil && v > 0 {
		d.buf.writer.Store(int64(v))
	}
	if os.Getenv("CURRENT_BUFDEBUG") == "" {
		return
	}
	d.goFunc(func() {
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		var mx, n int
		for {
			select {
			case <-t.C:
			case <-d.ctx.Done():
				return
			}
			live, limit, mapped := d.buf.pool.counts()
			mx = max(mx, live)
			n++
			if n%50 == 0 {
				s := d.BufferStats()
				var qf uint64
				for _, ps := range d.Stats().Peers {
					qf += ps.DropQueueFull
				}
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				d.log.Info("bufdebug", "live", live, "max1s", mx, "cap", limit, "mapped", mapped, "nobuf", s.DropNoBuffer, "qfull", qf, "reclaimed", s.Reclaimed,
					"heapinuse", ms.HeapInuse>>10, "heapidle", ms.HeapIdle>>10, "heapreleased", ms.HeapReleased>>10, "stack", ms.StackSys>>10, "sys", ms.Sys>>10, "numgc", ms.NumGC)
				mx = 0
			}
		}
	})
}

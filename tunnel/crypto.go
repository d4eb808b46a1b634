package tunnel

import (
	"runtime"
	"sync"
)

// The crypto workers. A peer's owner seals or opens a whole batch at once
// through the session's batch calls, which hand the AEAD work to
// cryptoPool.run: the batch is cut into chunks, the workers take all but
// the first, the owner does that one and waits for the rest (fork and
// join). The session's state is touched only by the owner, before and
// after, so per-peer order (sequence numbers, replay windows, epochs) is
// decided in one place, while the cryptography of one busy peer uses every
// core. A chunk no worker is free for is done by the owner itself, so
// owners never wait for each other's work.

const (
	// minChunk is the fewest records worth handing to another core: below
	// it the wake-up costs more than the AEAD.
	minChunk = 8
	// cryptoQueueLen bounds waiting chunks; a full queue means the
	// workers are busy and the owner does the chunk.
	cryptoQueueLen = 64
)

type cryptoChunk struct {
	f      func(int)
	lo, hi int
	wg     *sync.WaitGroup
}

type cryptoPool struct {
	chunks  chan cryptoChunk
	workers int
	// wgs recycles the WaitGroups of joins.
	wgs sync.Pool
}

// startCrypto starts one worker per CPU but one (the owners are the
// others' share). Close stops them once every owner is done.
func (d *Device) startCrypto() {
	c := &d.crypto
	c.workers = max(runtime.GOMAXPROCS(0)-1, 0)
	c.chunks = make(chan cryptoChunk, cryptoQueueLen)
	c.wgs.New = func() any { return new(sync.WaitGroup) }
	for range c.workers {
		d.goFunc(func() {
			for ch := range c.chunks {
				for i := ch.lo; i < ch.hi; i++ {
					ch.f(i)
				}
				ch.wg.Done()
			}
		})
	}
}

// stopCrypto ends the workers; no owner may call run afterwards.
func (d *Device) stopCrypto() {
	if d.crypto.chunks != nil {
		close(d.crypto.chunks)
	}
}

// run is a session.Parallel: f(0), ..., f(n-1) spread over the workers
// and the caller.
func (c *cryptoPool) run(n int, f func(i int)) {
	parts := min(c.workers+1, n/minChunk)
	if parts <= 1 {
		for i := range n {
			f(i)
		}
		return
	}
	wg := c.wgs.Get().(*sync.WaitGroup)
	size := (n + parts - 1) / parts
	for lo := size; lo < n; lo += size {
		hi := min(lo+size, n)
		wg.Add(1)
		select {
		case c.chunks <- cryptoChunk{f: f, lo: lo, hi: hi, wg: wg}:
		default:
			for i := lo; i < hi; i++ {
				f(i)
			}
			wg.Done()
		}
	}
	for i := range size {
		f(i)
	}
	wg.Wait()
	c.wgs.Put(wg)
}

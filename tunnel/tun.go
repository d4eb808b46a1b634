package tunnel

import (
	"errors"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/current-vpn/current/tun"
)

// TUN is the packet device, in the batch shape of wireguard-go's
// tun.Device (which package tun wraps): Read fills up to len(bufs) packets
// starting at offset in each buffer, Write writes packets that start at
// offset, leaving the headroom before it to the device (virtio headers when
// offloads are on).
type TUN interface {
	Read(bufs [][]byte, sizes []int, offset int) (int, error)
	Write(bufs [][]byte, offset int) (int, error)
	BatchSize() int
	Close() error
}

const (
	// tunOffset is the headroom in front of each packet handed to the TUN;
	// wireguard-go's Linux device needs at least 10 bytes for the virtio
	// header.
	tunOffset = 16
	// maxSegment is the largest packet Read may return: with offloads one
	// read may deliver a 64 KiB GSO super-packet before splitting.
	maxSegment = 1<<16 - 1
)

// segmentReader is a TUN that splits what it reads straight into buffers
// it asks for once it knows how many it needs (tun.Device): the reader
// then takes pool buffers after the read, as the memory bound wants
// (readers.go), without copying every packet once more.
type segmentReader interface {
	ReadSegments(raw []byte, get func(n int) [][]byte, sizes []int, offset int) (int, error)
	// ReadSegmentsNow does not wait: tun.ErrNothingWaiting if the device
	// has nothing queued.
	ReadSegmentsNow(raw []byte, get func(n int) [][]byte, sizes []int, offset int) (int, error)
}

// rawReadSize is what a segmentReader reads into: a virtio-net header and
// the largest packet.
const rawReadSize = 10 + maxSegment // tun.RawReadSize

// readTUN is the TUN reader goroutine: it dispatches each packet to the
// peer whose allowed IPs hold the destination, one batch per peer and
// read. Packets go into pool buffers taken after the read; when the pool
// has none left, the packet is dropped (bufcap.go).
func (d *Device) readTUN() {
	if sr, ok := d.tun.(segmentReader); ok {
		d.readTUNSegments(sr)
		return
	}
	d.readTUNSlots()
}

// readTUNSegments reads a packet or super-packet at a time into a receive
// slot and has it split into pool buffers. After a read it goes on reading
// without waiting, into the same batches, until the device has nothing
// queued or a batch is full: on a busy link one hand-off to the owner (and
// from it to the crypto workers and the UDP writer) then carries several
// super-packets rather than one. It never waits while it holds buffers.
func (d *Device) readTUNSegments(sr segmentReader) {
	slots := newReceiveSlots(1, &d.slotEpoch)
	defer slots.unmap()
	raw := slots.bufs[0][:rawReadSize]
	bufs := make([]*packetBuf, maxBatch)
	arrs := make([][]byte, maxBatch)
	sizes := make([]int, maxBatch)
	got := 0
	var bt batcher
	held := 0 // packets in bt
	get := func(n int) [][]byte {
		n = min(n, maxBatch)
		if held+n > maxBatch {
			// A batch is at most maxBatch packets (what the queues and
			// the writers budget for): hand over what is held first.
			bt.flush((*peer).enqueue)
			held = 0
		}
		got = d.buf.pool.getN(bufs[:n])
		if got < n {
			d.buf.pool.noBuffer.Add(uint64(n - got))
		}
		for i, b := range bufs[:got] {
			arrs[i] = b.arr
		}
		return arrs[:got]
	}
	for {
		got = 0
		var k int
		var err error
		if held == 0 {
			k, err = sr.ReadSegments(raw, get, sizes, tunOffset)
		} else {
			k, err = sr.ReadSegmentsNow(raw, get, sizes, tunOffset)
		}
		var rc routeCache // the segments of one read share their headers
		for i, b := range bufs[:got] {
			if i >= k {
				b.release()
				continue
			}
			b.pkt = b.arr[tunOffset : tunOffset+sizes[i]]
			if p := rc.route(d, b.pkt); p != nil {
				bt.add(p, b)
				held++
			} else {
				b.release()
			}
		}
		clear(bufs[:got])
		clear(arrs[:got])
		if err == nil && held > 0 && held < maxBatch {
			continue
		}
		bt.flush((*peer).enqueue)
		held = 0
		slots.giveBack()
		if err != nil && !errors.Is(err, tun.ErrNothingWaiting) && d.tunReadFailed(err, k) {
			return
		}
	}
}

// tunReadFailed handles a read error; true: the device is closed.
func (d *Device) tunReadFailed(err error, k int) bool {
	if d.closing.Load() || errors.Is(err, os.ErrClosed) {
		return true
	}
	// wireguard-go's tun returns ErrTooManySegments for a GSO packet
	// that does not fit the batch; the rest of the batch was still
	// delivered, so go on.
	d.log.Debug("TUN read", "err", err)
	if k == 0 {
		// A device that keeps failing (removed under us) must not turn
		// this loop into a busy one.
		if d.stats.tunReadErrors.Add(1)%100 == 1 {
			d.log.Warn("TUN read failed", "err", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// readTUNSlots reads batches into receive slots of its own and copies
// each packet it routes into a pool buffer.
func (d *Device) readTUNSlots() {
	n := max(d.tun.BatchSize(), 1)
	slots := newReceiveSlots(n, &d.slotEpoch)
	defer slots.unmap()
	bufs := slots.bufs
	sizes := make([]int, n)
	var r routedReads
	r.init(n)
	var bt batcher
	for {
		k, err := d.tun.Read(bufs, sizes, tunOffset)
		for i := range k {
			pkt := bufs[i][tunOffset : tunOffset+sizes[i]]
			if p := d.route(pkt); p != nil {
				r.add(p, i)
			}
		}
		got := r.take(d.buf.pool)
		for j, b := range r.bufs[:got] {
			i := r.slots[j]
			b.pkt = b.arr[tunOffset : tunOffset+copy(b.arr[tunOffset:], bufs[i][tunOffset:tunOffset+sizes[i]])]
			bt.add(r.peers[j], b)
		}
		r.reset()
		bt.flush((*peer).enqueue)
		slots.giveBack()
		if err != nil && d.tunReadFailed(err, k) {
			return
		}
	}
}

// routeCache remembers the last destination routed: the segments of a
// super-packet all go to one address, and one lookup in the allowed-IPs
// table serves them all. It lives for one read, so a table changed by a
// reconfiguration is seen at the next.
type routeCache struct {
	dst netip.Addr
	p   *peer
}

func (rc *routeCache) route(d *Device, pkt []byte) *peer {
	_, dst, ok := packetAddrs(pkt)
	if ok && rc.p != nil && dst == rc.dst {
		return rc.p
	}
	p := d.route(pkt)
	if p != nil {
		rc.dst, rc.p = dst, p
	}
	return p
}

// route finds the peer of one outbound packet, nil (counted) if none.
func (d *Device) route(pkt []byte) *peer {
	_, dst, ok := packetAddrs(pkt)
	if !ok {
		d.stats.dropInvalid.Add(1)
		return nil
	}
	p, ok := d.table.Lookup(dst)
	if !ok {
		d.stats.dropNoPeer.Add(1)
		return nil
	}
	return p
}

// tunWriter serialises writes to the TUN: wireguard-go's device keeps
// per-write state for offloads, and one lock is simpler than reasoning
// about its concurrent use.
type tunWriter struct {
	mu  sync.Mutex
	dev TUN
}

// write writes packets (each with tunOffset bytes of headroom).
func (w *tunWriter) write(bufs [][]byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, err := w.dev.Write(bufs, tunOffset)
	return err
}

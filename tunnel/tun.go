package tunnel

import (
	"errors"
	"os"
	"sync"
	"time"
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

// readTUN is the TUN reader goroutine: it dispatches each packet to the
// peer whose allowed IPs hold the destination, one batch per peer and
// read. The reader reads into receive slots of its own and copies each
// packet it routes into a pool buffer; when the pool has none left, the
// packet is dropped (bufcap.go).
func (d *Device) readTUN() {
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
		if err != nil {
			if d.closing.Load() || errors.Is(err, os.ErrClosed) {
				return
			}
			// wireguard-go's tun returns ErrTooManySegments for a GSO
			// packet that does not fit the batch; the rest of the batch was
			// still delivered, so go on.
			d.log.Debug("TUN read", "err", err)
			if k == 0 {
				// A device that keeps failing (removed under us) must
				// not turn this loop into a busy one.
				if d.stats.tunReadErrors.Add(1)%100 == 1 {
					d.log.Warn("TUN read failed", "err", err)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
	}
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

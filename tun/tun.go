// Package tun is the daemon's packet interface to the kernel: the TUN
// device whose outbound IP packets current encrypts to peers and into which
// it writes the packets it decrypts.
//
// It wraps golang.zx2c4.com/wireguard/tun, which does the hard parts on
// Linux: batched reads and writes, and the virtio-net header offloads that
// let the kernel hand over one 64 KiB TCP or UDP super-packet instead of
// dozens of MTU-sized ones (split here on read, coalesced on write). What
// this package adds is the contract around them, stated once and checked:
//
//   - Buffers. Read and Write take a batch of buffers and an offset: the
//     packet starts offset bytes into each buffer, so the daemon can keep
//     room for its own header in front of it and encrypt in place. Write
//     needs offset >= Headroom() (VirtioNetHdrLen when offloads are on),
//     because the virtio-net header is written into those bytes; reserving
//     VirtioNetHdrLen always is simplest. Read needs no offset on Linux
//     and 4 bytes on macOS and FreeBSD (minOffset), and
//     every buffer must hold offset+MTU bytes, and len(bufs) should be
//     BatchSize(): one super-packet fills up to that many buffers.
//   - Write may coalesce packets of one flow: on Linux, TCP segments into
//     one super-packet written from their buffers as they are
//     (gro_linux.go), and UDP datagrams into the first buffer of the flow,
//     using spare capacity beyond its length (cap(buf) > len(buf) makes
//     that possible, and it never allocates). It overwrites the headroom
//     and packet headers. Buffers belong to Write until it returns and
//     their contents are undefined afterwards.
//   - ReadSegments (Linux) reads a super-packet first and asks for as
//     many buffers as it has segments afterwards (split_linux.go), for a
//     reader that must not hold buffers while it waits.
//   - Namespaces (Linux). A TUN is created in the network namespace of the
//     thread that creates it. CreateAt does that on a thread of its own
//     (see routing.InNamespace); the device's fd, and this package's
//     netlink socket, keep working from any thread afterwards.
//
// Platform seam: wireguard/tun creates and drives the device everywhere
// (Linux tun, macOS utun, FreeBSD tun); what this package asks the kernel
// about it besides is in kernel_linux.go (netlink: index, MTU, state,
// queue length; the virtio-net offloads; namespaces) and kernel_bsd.go
// (the interface by index; no offloads, one packet per call, and a 4-byte
// address-family header in front of each packet, which is why Headroom is
// 4 there and Read needs the same). name.go says which interface names
// each system accepts.
package tun

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// VirtioNetHdrLen is the size of struct virtio_net_hdr, the per-packet
// header the kernel and the device exchange when offloads are on. It is a
// kernel ABI constant; wireguard/tun keeps its copy unexported.
const VirtioNetHdrLen = 10

// ErrNothingWaiting is ReadSegmentsNow's answer (Linux) when the device
// has no packet queued.
var ErrNothingWaiting = errors.New("no packet waiting")

// TxQueueLen is the length of the queue in which the kernel holds
// packets for the daemon to read; Create sets it. The kernel's default
// for a TUN (500) overflows whenever the reading goroutine waits a few
// milliseconds for a core: UDP at 300 Mbit/s lost 1-5% of its datagrams
// there on a loaded 2-core machine, and none with 1000, the default of
// other virtual interfaces.
const TxQueueLen = 1000

// Offloads says which offloads the kernel accepted for a device.
type Offloads struct {
	// TCP: TCP segmentation offload (TSO4, TSO6) and checksum offload.
	// Read may split one large TCP segment from the kernel into many
	// packets, and Write may coalesce consecutive TCP packets of one flow.
	TCP bool
	// UDP: UDP segmentation offload (USO4, USO6, Linux 6.2 and later),
	// the same for UDP. Only possible when TCP is.
	UDP bool
}

// Device is a TUN device with the batch interface of wireguard/tun.
// Read and Write may be called concurrently with each other, but neither
// concurrently with itself.
type Device struct {
	dev      wgtun.Device
	name     string
	index    int
	offloads Offloads
	kernel   kernel // the platform's view of the interface

	changes chan struct{}
	drained chan struct{}

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// Create creates a TUN device in the caller's network namespace. name may
// contain one "%d", which the kernel replaces to make it unique. mtu is
// set on the interface before Create returns.
func Create(name string, mtu int) (*Device, error) {
	return create(name, mtu)
}

func create(name string, mtu int) (*Device, error) {
	if mtu <= 0 {
		return nil, fmt.Errorf("create tun %s: invalid MTU %d", name, mtu)
	}
	kname, err := tunName(platform, name)
	if err != nil {
		return nil, fmt.Errorf("create tun %s: %w", name, err)
	}
	wdev, err := wgtun.CreateTUN(kname, mtu)
	if err != nil {
		return nil, fmt.Errorf("create tun %s: %w", name, err)
	}
	d, err := wrap(wdev)
	if err != nil {
		wdev.Close()
		return nil, fmt.Errorf("create tun %s: %w", name, err)
	}
	return d, nil
}

func wrap(wdev wgtun.Device) (*Device, error) {
	name, err := wdev.Name()
	if err != nil {
		return nil, err
	}
	k, index, off, err := openKernel(wdev, name)
	if err != nil {
		return nil, err
	}
	d := &Device{
		dev:      wdev,
		name:     name,
		index:    index,
		offloads: off,
		kernel:   k,
		changes:  make(chan struct{}, 1),
		drained:  make(chan struct{}),
	}
	go d.drain()
	return d, nil
}

// drain consumes wireguard/tun's event channel. It must always be read:
// wireguard/tun's listeners block on a full channel, and then its Close
// leaves them behind. The events themselves are only used as a nudge:
// wireguard/tun reports "up" from a write probe that cannot see the
// interface go down, and "down" only in rare cases, so IsUp asks the
// kernel instead.
func (d *Device) drain() {
	defer close(d.drained)
	for range d.dev.Events() {
		select {
		case d.changes <- struct{}{}:
		default:
		}
	}
}

// Name returns the interface name chosen at creation.
func (d *Device) Name() string { return d.name }

// Index returns the interface index.
func (d *Device) Index() int { return d.index }

// Offloads returns the offloads in effect.
func (d *Device) Offloads() Offloads { return d.offloads }

// Headroom returns the smallest offset Write accepts.
func (d *Device) Headroom() int {
	if d.offloads.TCP {
		return VirtioNetHdrLen
	}
	return minOffset
}

// BatchSize returns how many buffers Read can fill and Write can take in
// one call: 128 with offloads, 1 without.
func (d *Device) BatchSize() int { return d.dev.BatchSize() }

// MTU returns the interface MTU as the kernel has it now. Someone else (or
// the daemon, through routing.Link) may change it; Changes reports it.
func (d *Device) MTU() (int, error) {
	mtu, err := d.kernel.mtu(d.index)
	if err != nil {
		return 0, fmt.Errorf("tun %s: mtu: %w", d.name, err)
	}
	return mtu, nil
}

// IsUp reports whether the interface is up and running (administratively
// up, and the device open), as the kernel has it now.
func (d *Device) IsUp() (bool, error) {
	up, err := d.kernel.isUp(d.index)
	if err != nil {
		return false, fmt.Errorf("tun %s: state: %w", d.name, err)
	}
	return up, nil
}

// Changes delivers a signal after the kernel reports a change to the
// interface (state, MTU, ...), and at times when nothing changed. Signals
// coalesce: on one, look at IsUp and MTU.
func (d *Device) Changes() <-chan struct{} { return d.changes }

// Read reads one or more packets into bufs, each starting offset bytes in,
// and sets sizes[i] to the length of the packet in bufs[i]. It returns the
// number of packets read. An error wrapping wgtun.ErrTooManySegments is
// not fatal (bufs was shorter than a super-packet): the packets counted
// are good, and reading should go on. After Close it returns an error
// wrapping os.ErrClosed. Any other error means the device is unusable.
func (d *Device) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if len(bufs) == 0 || len(sizes) < len(bufs) || offset < minOffset {
		return 0, fmt.Errorf("tun %s: read: %d buffers, %d sizes, offset %d", d.name, len(bufs), len(sizes), offset)
	}
	n, err := d.dev.Read(bufs, sizes, offset)
	if err != nil && d.closed.Load() {
		// Close makes wireguard/tun's event listener fail, and Read
		// reports that failure before the closed file; both mean closed.
		return n, fmt.Errorf("tun %s: %w", d.name, os.ErrClosed)
	}
	return n, err
}

// Write writes the packets bufs[i][offset:] and returns len(bufs) when all
// were accepted. On error some may have been delivered and the count is 0:
// packets cannot be reliably retried (a retry could duplicate), so the
// daemon should count the batch as lost. offset must be at least
// Headroom().
func (d *Device) Write(bufs [][]byte, offset int) (int, error) {
	if offset < d.Headroom() {
		return 0, fmt.Errorf("tun %s: write offset %d leaves less than the %d bytes of headroom offloads need", d.name, offset, d.Headroom())
	}
	for i, b := range bufs {
		if len(b) <= offset {
			return 0, fmt.Errorf("tun %s: write: buffer %d holds no packet after offset %d", d.name, i, offset)
		}
	}
	if done, err := d.kernel.write(d.dev, bufs, offset); done {
		if err != nil {
			return 0, err
		}
		return len(bufs), nil
	}
	// wireguard/tun's count is bytes, despite its interface's comment.
	if _, err := d.dev.Write(bufs, offset); err != nil {
		return 0, err
	}
	return len(bufs), nil
}

// Close destroys the interface (and with it every address and route on
// it) and unblocks a pending Read.
func (d *Device) Close() error {
	d.closeOnce.Do(func() {
		d.closed.Store(true)
		d.closeErr = d.dev.Close()
		if errors.Is(d.closeErr, unix.EPIPE) || errors.Is(d.closeErr, os.ErrClosed) {
			// wireguard/tun reports the failure to wake its netlink
			// listener, which the link's removal had already woken and
			// ended (it closes that pipe on its way out), in place of
			// the device's own close, which it still does. Not an error.
			d.closeErr = nil
		}
		// wireguard/tun closes its event channel once its listeners have
		// stopped, which takes at most a moment; the bound is in case a
		// future version does not.
		select {
		case <-d.drained:
		case <-time.After(5 * time.Second):
			d.closeErr = errors.Join(d.closeErr, fmt.Errorf("tun %s: event listeners did not stop", d.name))
		}
		d.kernel.close()
	})
	return d.closeErr
}

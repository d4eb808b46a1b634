package tun

import (
	"fmt"
	"syscall"

	"github.com/current-vpn/current/routing"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// platform is this system's name for name.go.
const platform = "linux"

// minOffset is the smallest offset Read and, without offloads, Write
// accept: Linux's TUN takes the bare packet.
const minOffset = 0

// kernel is what the daemon asks the kernel about the device: over a
// netlink socket in the device's namespace.
type kernel struct {
	h *netlink.Handle
	// gro coalesces TCP on Write when offloads are on (gro_linux.go),
	// writing to the device's file through rc, which ReadSegments reads
	// from too (split_linux.go).
	gro *groWriter
	rc  syscall.RawConn
}

// CreateAt creates a TUN device in network namespace ns.
func CreateAt(ns netns.NsHandle, name string, mtu int) (*Device, error) {
	var d *Device
	err := routing.InNamespace(ns, func() error {
		var err error
		d, err = create(name, mtu)
		return err
	})
	if err != nil && d != nil {
		// Created, but the thread could not be moved back; InNamespace
		// has disposed of it, and the device is still good.
		err = nil
	}
	return d, err
}

// openKernel looks the device up and tunes it: its index, the offloads
// wireguard/tun negotiated, and the transmit queue.
func openKernel(wdev wgtun.Device, name string) (kernel, int, Offloads, error) {
	off, err := probeOffloads(wdev, name)
	if err != nil {
		return kernel{}, 0, Offloads{}, fmt.Errorf("offloads: %w", err)
	}
	// wireguard/tun's MTU() asks with an ioctl by name in whatever
	// namespace the calling thread is in, which is wrong for a device made
	// by CreateAt; a netlink socket made now is bound to the device's.
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return kernel{}, 0, Offloads{}, fmt.Errorf("netlink: %w", err)
	}
	link, err := h.LinkByName(name)
	if err != nil {
		h.Close()
		return kernel{}, 0, Offloads{}, fmt.Errorf("look up %s: %w", name, err)
	}
	if link.Attrs().TxQLen < TxQueueLen {
		// Best effort: a tuning, not a requirement (the device works
		// with the kernel's 500 too, it only drops more on bursts).
		_ = h.LinkSetTxQLen(link, TxQueueLen)
	}
	k := kernel{h: h}
	if off.TCP {
		rc, err := wdev.File().SyscallConn()
		if err != nil {
			h.Close()
			return kernel{}, 0, Offloads{}, err
		}
		k.gro, k.rc = newGROWriter(), rc
	}
	return k, link.Attrs().Index, off, nil
}

// write writes bufs through our own TCP coalescing when offloads are on;
// done is false when it is not, and wireguard/tun writes them.
func (k kernel) write(dev wgtun.Device, bufs [][]byte, offset int) (done bool, err error) {
	if k.gro == nil {
		return false, nil
	}
	return true, k.gro.write(k.rc, bufs, offset, func(run [][]byte) error {
		_, err := dev.Write(run, offset)
		return err
	})
}

// probeOffloads finds out what wireguard/tun negotiated, which it does not
// export. IFF_VNET_HDR stays set only if the TCP offloads were accepted
// (CreateTUN fails otherwise). For UDP it repeats wireguard/tun's own
// TUNSETOFFLOAD call: it succeeds exactly when wireguard/tun's did, and a
// refusal changes nothing.
func probeOffloads(wdev wgtun.Device, name string) (Offloads, error) {
	sc, err := wdev.File().SyscallConn()
	if err != nil {
		return Offloads{}, err
	}
	var off Offloads
	var ioErr error
	err = sc.Control(func(fd uintptr) {
		ifr, err := unix.NewIfreq(name)
		if err != nil {
			ioErr = err
			return
		}
		if err := unix.IoctlIfreq(int(fd), unix.TUNGETIFF, ifr); err != nil {
			ioErr = fmt.Errorf("TUNGETIFF: %w", err)
			return
		}
		if ifr.Uint16()&unix.IFF_VNET_HDR == 0 {
			return
		}
		off.TCP = true
		const all = unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6 | unix.TUN_F_USO4 | unix.TUN_F_USO6
		off.UDP = unix.IoctlSetInt(int(fd), unix.TUNSETOFFLOAD, all) == nil
	})
	if err != nil {
		return Offloads{}, err
	}
	return off, ioErr
}

func (k kernel) mtu(index int) (int, error) {
	l, err := k.h.LinkByIndex(index)
	if err != nil {
		return 0, err
	}
	return l.Attrs().MTU, nil
}

func (k kernel) isUp(index int) (bool, error) {
	l, err := k.h.LinkByIndex(index)
	if err != nil {
		return false, err
	}
	return l.Attrs().RawFlags&(unix.IFF_UP|unix.IFF_RUNNING) == unix.IFF_UP|unix.IFF_RUNNING, nil
}

func (k kernel) close() { k.h.Close() }

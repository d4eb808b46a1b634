//go:build darwin || freebsd

package tun

import (
	"fmt"
	"net"
	"runtime"

	wgtun "golang.zx2c4.com/wireguard/tun"
)

// platform is this system's name for name.go.
const platform = runtime.GOOS

// minOffset is the smallest offset Read and Write accept: wireguard/tun
// puts the 4-byte address family header of utun (macOS) and of tun in
// TUNSIFHEAD mode (FreeBSD) in front of the packet.
const minOffset = 4

// kernel asks about the device through the interface list; there is no
// namespace to be in, and no offload or queue to tune.
type kernel struct{}

func openKernel(wdev wgtun.Device, name string) (kernel, int, Offloads, error) {
	ifi, err := net.InterfaceByName(name)
	if err != nil {
		return kernel{}, 0, Offloads{}, fmt.Errorf("look up %s: %w", name, err)
	}
	return kernel{}, ifi.Index, Offloads{}, nil
}

func (kernel) mtu(index int) (int, error) {
	ifi, err := net.InterfaceByIndex(index)
	if err != nil {
		return 0, err
	}
	return ifi.MTU, nil
}

func (kernel) isUp(index int) (bool, error) {
	ifi, err := net.InterfaceByIndex(index)
	if err != nil {
		return false, err
	}
	return ifi.Flags&net.FlagUp != 0 && ifi.Flags&net.FlagRunning != 0, nil
}

func (kernel) close() {}

// write leaves every write to wireguard/tun: no offloads here.
func (kernel) write(wgtun.Device, [][]byte, int) (bool, error) { return false, nil }

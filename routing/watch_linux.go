package routing

import (
	"fmt"

	"github.com/vishvananda/netlink"
)

// WatchAddresses calls changed after every change to the host's IP
// addresses in the caller's network namespace (an address added or
// removed, on any interface), until stop is closed. It is how the daemon
// notices that its own underlay moved (a laptop on a new network): the
// source addresses it remembered for its peers may be gone, and the peers
// must hear from it at once to learn the new one. Changes come in bursts;
// changed is called for each and should only signal. The subscription is
// open when WatchAddresses returns; done is closed when it has ended.
func WatchAddresses(stop <-chan struct{}, changed func()) (done <-chan struct{}, err error) {
	updates := make(chan netlink.AddrUpdate, 64)
	ended := make(chan struct{})
	opts := netlink.AddrSubscribeOptions{
		ErrorCallback: func(error) {},
	}
	if err := netlink.AddrSubscribeWithOptions(updates, stop, opts); err != nil {
		return nil, fmt.Errorf("watch addresses: %w", err)
	}
	go func() {
		defer close(ended)
		// The channel closes when the subscription ends: after stop, or
		// when its socket fails.
		for range updates {
			changed()
		}
	}()
	return ended, nil
}

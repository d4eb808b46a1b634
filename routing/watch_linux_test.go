package routing_test

import (
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/current-vpn/current/routing"
)

// TestWatchAddresses: adding and deleting an address in the namespace
// the watcher was started in is reported, and stopping it ends it.
func TestWatchAddresses(t *testing.T) {
	n := newVeth(t)
	changes := make(chan struct{}, 16)
	stop := make(chan struct{})
	var done <-chan struct{}
	err := routing.InNamespace(n.ns, func() error {
		var err error
		done, err = routing.WatchAddresses(stop, func() {
			select {
			case changes <- struct{}{}:
			default:
			}
		})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	expect := func(what string) {
		t.Helper()
		select {
		case <-changes:
		case <-time.After(5 * time.Second):
			t.Fatalf("no change reported after %s", what)
		}
		for len(changes) > 0 { // one action may bring several messages
			<-changes
		}
	}
	addr := &netlink.Addr{IPNet: ipnet(mustPrefix("192.0.2.7/24"))}
	if err := n.h.AddrAdd(n.link("ct0"), addr); err != nil {
		t.Fatal(err)
	}
	expect("adding 192.0.2.7/24")
	if err := n.h.AddrDel(n.link("ct0"), addr); err != nil {
		t.Fatal(err)
	}
	expect("deleting 192.0.2.7/24")
	close(stop)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the watcher did not stop")
	}
}

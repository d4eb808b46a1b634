package ctl_test

import (
	"errors"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/current-vpn/current/config"
	"github.com/current-vpn/current/ctl"
)

// TestOwnAddressRefused: peer.add and peer.update refuse an allowed prefix
// that is one of the interface's own addresses, with bad_request, and
// change nothing; wider prefixes containing it are accepted.
func TestOwnAddressRefused(t *testing.T) {
	ts := startServer(t)
	ts.fake.Lock()
	ts.fake.Cfg.Interface.Addresses = []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24"), netip.MustParsePrefix("fd00::1/64")}
	before := snapshot(ts.fake.Cfg)
	ts.fake.Unlock()
	c := ts.dial(t)
	cx := ctx(t)

	spec := ctl.PeerSpec{Name: "carol", PublicKey: newKey(t).String(), AllowedIPs: []string{"10.0.0.9/32", "10.0.0.1/32"}}
	err := c.AddPeer(cx, spec, true)
	if !errors.Is(err, ctl.ErrBadRequest) || !strings.Contains(err.Error(), "10.0.0.1/32 is our own address (interface.addresses[0] = 10.0.0.1/24)") {
		t.Fatalf("add with our own address: %v", err)
	}
	err = c.UpdatePeer(cx, ctl.PeerUpdateParams{Peer: "alice", AllowedIPs: []string{"10.0.0.2/32", "fd00::1/128"}, Save: true})
	if !errors.Is(err, ctl.ErrBadRequest) || !strings.Contains(err.Error(), "fd00::1/128 is our own address (interface.addresses[1] = fd00::1/64)") {
		t.Fatalf("update with our own address: %v", err)
	}
	ts.fake.Lock()
	after, saved := snapshot(ts.fake.Cfg), ts.fake.Saved
	ts.fake.Unlock()
	if !reflect.DeepEqual(before, after) || saved != 0 {
		t.Fatalf("refused changes changed the configuration (saved %d times):\n%v\n%v", saved, before, after)
	}

	// The spoke's view of its hub: the whole subnet, ours included.
	spec.AllowedIPs = []string{"10.0.0.0/24", "fd00::/64"}
	if err := c.AddPeer(cx, spec, false); err != nil {
		t.Fatalf("add with our subnet: %v", err)
	}
}

// snapshot is what the tests compare of a configuration: the peers'
// names and prefixes.
func snapshot(cfg *config.Config) map[string][]netip.Prefix {
	m := map[string][]netip.Prefix{}
	for _, p := range cfg.Peers {
		m[p.Name] = slices.Clone(p.AllowedIPs)
	}
	return m
}

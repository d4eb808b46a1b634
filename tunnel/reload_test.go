package tunnel

import (
	"net/netip"
	"testing"
)

func TestReconfigure(t *testing.T) {
	checkFDLeak(t)
	a, b := pair(t)
	p := ipPacket("10.0.0.2", "10.0.0.1", "before")
	b.tun.in <- p
	a.tun.expect(t, p)

	kc := newKeys(t, testSuite)
	peerB := PeerConfig{Name: "b", PublicKey: b.keys.pub, AllowedIPs: pfxs("10.0.0.2/32", "fd00::2/128", "192.168.2.0/24")}
	peerC := PeerConfig{Name: "c", PublicKey: kc.pub, AllowedIPs: pfxs("10.0.0.3/32", "192.168.3.0/24")}

	// Unchanged B plus a new subnet, and a new peer C.
	b2 := peerB
	b2.AllowedIPs = append(pfxs("192.168.22.0/24"), peerB.AllowedIPs...)
	if err := a.dev.Reconfigure([]PeerConfig{b2, peerC}); err != nil {
		t.Fatal(err)
	}
	wantRoutes(t, a.link, "192.168.2.0/24", "192.168.22.0/24", "10.0.0.3/32", "192.168.3.0/24", "10.0.0.2/32", "fd00::2/128")
	q := ipPacket("10.0.0.1", "192.168.22.9", "new subnet")
	a.tun.in <- q
	b.tun.expect(t, q)
	if s := a.dev.Stats().Peers["b"]; s.Handshakes != 1 || !s.Established {
		t.Fatalf("B's session did not survive the reload: %+v", s)
	}
	if _, ok := a.dev.Stats().Peers["c"]; !ok {
		t.Fatal("C not added")
	}

	// Back to B alone: C's routes and B's extra subnet go.
	if err := a.dev.Reconfigure([]PeerConfig{peerB}); err != nil {
		t.Fatal(err)
	}
	wantRoutes(t, a.link, "192.168.2.0/24", "10.0.0.2/32", "fd00::2/128")
	a.tun.in <- ipPacket("10.0.0.1", "192.168.22.9", "gone")
	waitFor(t, "no-peer drop", func() bool { return a.dev.Stats().DropNoPeer == 1 })
	if s := a.dev.Stats().Peers["b"]; s.Handshakes != 1 || !s.Established {
		t.Fatalf("B's session did not survive the second reload: %+v", s)
	}

	// Removing B closes its session, and B learns of it.
	if err := a.dev.Reconfigure(nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "B notices", func() bool { return !b.dev.Stats().Peers["a"].Established })
	wantRoutes(t, a.link)

	// Duplicate keys are refused and change nothing.
	if err := a.dev.Reconfigure([]PeerConfig{peerB, {Name: "x", PublicKey: b.keys.pub}}); err == nil {
		t.Fatal("duplicate key accepted")
	}
}

func wantRoutes(t *testing.T, l *fakeLink, want ...string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	got := map[netip.Prefix]bool{}
	for r := range l.routes {
		got[r] = true
	}
	for _, w := range want {
		if !got[netip.MustParsePrefix(w)] {
			t.Errorf("route %s missing", w)
		}
		delete(got, netip.MustParsePrefix(w))
	}
	for r := range got {
		t.Errorf("unexpected route %s", r)
	}
}

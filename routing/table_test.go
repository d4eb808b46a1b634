package routing

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

func checkTable[P comparable](t *testing.T, tb *Table[P]) {
	t.Helper()
	r := tb.root.Load()
	if r == nil {
		return
	}
	if err := check(r.v4.root, -1, 32); err != nil {
		t.Fatalf("v4: %v", err)
	}
	if err := check(r.v6.root, -1, 128); err != nil {
		t.Fatalf("v6: %v", err)
	}
	if err := checkJump(&r.v4, 32); err != nil {
		t.Fatalf("v4: %v", err)
	}
	if err := checkJump(&r.v6, 128); err != nil {
		t.Fatalf("v6: %v", err)
	}
}

func wantLookup(t *testing.T, tb *Table[string], a, want string) {
	t.Helper()
	got, ok := tb.Lookup(addr(a))
	if want == "" {
		if ok {
			t.Errorf("Lookup(%s) = %q, want no match", a, got)
		}
		return
	}
	if !ok || got != want {
		t.Errorf("Lookup(%s) = %q, %v; want %q", a, got, ok, want)
	}
}

func TestTableZeroValue(t *testing.T) {
	var tb Table[string]
	wantLookup(t, &tb, "10.0.0.1", "")
	wantLookup(t, &tb, "::1", "")
	if tb.Allowed("", addr("10.0.0.1")) {
		t.Error("empty table allowed the zero peer")
	}
	if tb.Remove(pfx("10.0.0.0/8")) {
		t.Error("Remove on empty table reported success")
	}
	tb.RemovePeer("a")
	if got := tb.Prefixes("a"); len(got) != 0 {
		t.Errorf("Prefixes = %v", got)
	}
}

func TestTableLongestMatch(t *testing.T) {
	var tb Table[string]
	for _, e := range []struct{ p, peer string }{
		{"0.0.0.0/0", "default4"},
		{"10.0.0.0/8", "a"},
		{"10.1.0.0/16", "b"},
		{"10.1.2.0/24", "c"},
		{"10.1.2.3/32", "d"},
		{"10.1.2.128/25", "e"},
		{"192.168.0.0/16", "f"},
		{"::/0", "default6"},
		{"2001:db8::/32", "a"},
		{"2001:db8:1::/48", "b"},
		{"2001:db8:1::1/128", "c"},
		{"2001:db8:8000::/33", "g"},
		{"fe80::/10", "h"},
	} {
		if err := tb.Insert(pfx(e.p), e.peer); err != nil {
			t.Fatal(err)
		}
	}
	checkTable(t, &tb)
	for _, c := range []struct{ a, want string }{
		{"11.0.0.1", "default4"},
		{"255.255.255.255", "default4"},
		{"0.0.0.0", "default4"},
		{"10.0.0.1", "a"},
		{"10.255.255.255", "a"},
		{"10.1.0.0", "b"},
		{"10.1.3.0", "b"},
		{"10.1.2.0", "c"},
		{"10.1.2.2", "c"},
		{"10.1.2.3", "d"},
		{"10.1.2.4", "c"},
		{"10.1.2.127", "c"},
		{"10.1.2.128", "e"},
		{"10.1.2.255", "e"},
		{"192.168.255.1", "f"},
		{"192.169.0.1", "default4"},
		{"::", "default6"},
		{"2001:db7::1", "default6"},
		{"2001:db8::1", "a"},
		{"2001:db8:1::", "b"},
		{"2001:db8:1::1", "c"},
		{"2001:db8:1::2", "b"},
		{"2001:db8:8000::1", "g"},
		{"2001:db8:ffff::1", "g"},
		{"fe80::1%eth0", "h"}, // zones play no part in matching
		{"febf::1", "h"},
		{"fec0::1", "default6"},
		// IPv4-mapped IPv6 addresses are looked up as IPv4, never as IPv6.
		{"::ffff:10.1.2.3", "d"},
		{"::ffff:11.0.0.1", "default4"},
	} {
		wantLookup(t, &tb, c.a, c.want)
	}
	if _, ok := tb.Lookup(netip.Addr{}); ok {
		t.Error("the zero Addr matched")
	}
}

func TestTableHostRoutesOnly(t *testing.T) {
	// Without a default route, neighbours of a /32 or /128 must not match.
	var tb Table[int]
	tb.Insert(pfx("192.0.2.1/32"), 1)
	tb.Insert(pfx("2001:db8::1/128"), 2)
	tb.Insert(pfx("2001:db8::/127"), 3)
	checkTable(t, &tb)
	for _, c := range []struct {
		a    string
		want int
		ok   bool
	}{
		{"192.0.2.1", 1, true},
		{"192.0.2.0", 0, false},
		{"192.0.2.2", 0, false},
		{"2001:db8::1", 2, true},
		{"2001:db8::", 3, true},
		{"2001:db8::2", 0, false},
		{"::ffff:192.0.2.1", 1, true},
		// The same bits in the other family are a different address.
		{"c000:201::", 0, false},
	} {
		got, ok := tb.Lookup(addr(c.a))
		if got != c.want || ok != c.ok {
			t.Errorf("Lookup(%s) = %d, %v; want %d, %v", c.a, got, ok, c.want, c.ok)
		}
	}
}

func TestTableDefaultRouteOnly(t *testing.T) {
	var tb Table[string]
	tb.Insert(pfx("0.0.0.0/0"), "v4")
	wantLookup(t, &tb, "203.0.113.9", "v4")
	wantLookup(t, &tb, "2001:db8::1", "") // /0 of one family says nothing of the other
	tb.Insert(pfx("::/0"), "v6")
	wantLookup(t, &tb, "2001:db8::1", "v6")
	wantLookup(t, &tb, "::ffff:1.2.3.4", "v4")
	if !tb.Remove(pfx("0.0.0.0/0")) {
		t.Fatal("Remove(0.0.0.0/0) = false")
	}
	wantLookup(t, &tb, "203.0.113.9", "")
	wantLookup(t, &tb, "2001:db8::1", "v6")
	checkTable(t, &tb)
}

func TestTableInsertNormalises(t *testing.T) {
	var tb Table[string]
	if err := tb.Insert(pfx("10.1.2.3/16"), "a"); err != nil {
		t.Fatal(err)
	}
	if got := tb.Prefixes("a"); !slices.Equal(got, []netip.Prefix{pfx("10.1.0.0/16")}) {
		t.Errorf("Prefixes = %v, want host bits cleared", got)
	}
	// Removing by either spelling removes the same prefix.
	if !tb.Remove(pfx("10.1.255.255/16")) {
		t.Error("Remove with host bits set did not find the prefix")
	}
	for _, bad := range []netip.Prefix{
		{},
		pfx("::ffff:10.0.0.0/104"),
		pfx("::ffff:0:0/96"),
		pfx("::ffff:1.2.3.4/128"),
	} {
		if err := tb.Insert(bad, "x"); err == nil {
			t.Errorf("Insert(%v) accepted", bad)
		}
		if err := tb.SetPeer("x", []netip.Prefix{pfx("10.0.0.0/8"), bad}); err == nil {
			t.Errorf("SetPeer with %v accepted", bad)
		}
	}
	if got := tb.Prefixes("x"); len(got) != 0 {
		t.Errorf("a rejected SetPeer changed the table: %v", got)
	}
	// Prefixes shorter than /96 merely contain the mapped range; they are
	// ordinary IPv6 prefixes that no unmapped lookup reaches.
	if err := tb.Insert(pfx("::/80"), "y"); err != nil {
		t.Errorf("Insert(::/80) = %v", err)
	}
	wantLookup(t, &tb, "::ffff:10.0.0.1", "")
	wantLookup(t, &tb, "::1", "y")
}

func TestTableReassignAndRemove(t *testing.T) {
	var tb Table[string]
	tb.Insert(pfx("10.0.0.0/8"), "a")
	tb.Insert(pfx("10.1.0.0/16"), "a")
	tb.Insert(pfx("10.1.0.0/16"), "b") // moves to b
	tb.Insert(pfx("2001:db8::/32"), "a")
	checkTable(t, &tb)
	if got, want := tb.Prefixes("a"), []netip.Prefix{pfx("10.0.0.0/8"), pfx("2001:db8::/32")}; !slices.Equal(got, want) {
		t.Errorf("Prefixes(a) = %v, want %v", got, want)
	}
	if got, want := tb.Prefixes("b"), []netip.Prefix{pfx("10.1.0.0/16")}; !slices.Equal(got, want) {
		t.Errorf("Prefixes(b) = %v, want %v", got, want)
	}
	wantLookup(t, &tb, "10.1.0.1", "b")

	if !tb.Allowed("b", addr("10.1.9.9")) || tb.Allowed("a", addr("10.1.9.9")) {
		t.Error("Allowed does not follow the longest match")
	}
	if !tb.Allowed("a", addr("10.2.0.1")) || tb.Allowed("b", addr("10.2.0.1")) {
		t.Error("Allowed does not follow the longest match")
	}
	if tb.Allowed("a", addr("192.0.2.1")) {
		t.Error("Allowed for an address no prefix contains")
	}

	if tb.Remove(pfx("10.2.0.0/16")) {
		t.Error("Remove of an absent prefix reported success")
	}
	if !tb.Remove(pfx("10.1.0.0/16")) {
		t.Error("Remove(10.1.0.0/16) = false")
	}
	wantLookup(t, &tb, "10.1.0.1", "a")
	if got := tb.Prefixes("b"); len(got) != 0 {
		t.Errorf("Prefixes(b) after removal = %v", got)
	}
	checkTable(t, &tb)

	tb.RemovePeer("a")
	wantLookup(t, &tb, "10.1.0.1", "")
	wantLookup(t, &tb, "2001:db8::1", "")
	if r := tb.root.Load(); r.v4.root != nil || r.v6.root != nil || r.v4.jump != nil {
		t.Errorf("tries not empty after removing every prefix: %+v", r)
	}
}

func TestTableRemoveKeepsBranchPoints(t *testing.T) {
	// 10.0.0.0/24 and 10.0.1.0/24 hang off a peerless branch point at /23;
	// a prefix inserted exactly there, then removed, must leave the branch.
	var tb Table[string]
	tb.Insert(pfx("10.0.0.0/24"), "a")
	tb.Insert(pfx("10.0.1.0/24"), "b")
	tb.Insert(pfx("10.0.0.0/23"), "c")
	wantLookup(t, &tb, "10.0.0.1", "a")
	if !tb.Remove(pfx("10.0.0.0/23")) {
		t.Fatal("Remove(10.0.0.0/23) = false")
	}
	if tb.Remove(pfx("10.0.0.0/23")) {
		t.Fatal("second Remove(10.0.0.0/23) = true: a branch point counted as a prefix")
	}
	checkTable(t, &tb)
	wantLookup(t, &tb, "10.0.0.1", "a")
	wantLookup(t, &tb, "10.0.1.1", "b")
	tb.Remove(pfx("10.0.0.0/24"))
	checkTable(t, &tb)
	wantLookup(t, &tb, "10.0.1.1", "b")
	wantLookup(t, &tb, "10.0.0.1", "")
}

func TestTableSetPeer(t *testing.T) {
	var tb Table[string]
	tb.Insert(pfx("10.0.0.0/8"), "a")
	tb.Insert(pfx("10.9.0.0/16"), "a")
	tb.Insert(pfx("192.0.2.0/24"), "b")
	if err := tb.SetPeer("a", []netip.Prefix{pfx("10.0.0.0/8"), pfx("192.0.2.0/24"), pfx("2001:db8::/32")}); err != nil {
		t.Fatal(err)
	}
	checkTable(t, &tb)
	if got, want := tb.Prefixes("a"), []netip.Prefix{pfx("10.0.0.0/8"), pfx("192.0.2.0/24"), pfx("2001:db8::/32")}; !slices.Equal(got, want) {
		t.Errorf("Prefixes(a) = %v, want %v", got, want)
	}
	if got := tb.Prefixes("b"); len(got) != 0 {
		t.Errorf("Prefixes(b) = %v, want the prefix moved to a", got)
	}
	wantLookup(t, &tb, "192.0.2.1", "a")
	if err := tb.SetPeer("a", nil); err != nil {
		t.Fatal(err)
	}
	wantLookup(t, &tb, "10.0.0.1", "")
}

// TestTableCopyOnWrite checks that a write never mutates what a reader that
// loaded the previous root can see.
func TestTableCopyOnWrite(t *testing.T) {
	var tb Table[int]
	for i := range 64 {
		tb.Insert(netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i), 0, 0}), 16), i)
	}
	before := tb.root.Load()
	snapshot := func(r *roots[int]) map[netip.Addr]int {
		m := map[netip.Addr]int{}
		for i := range 64 {
			a := netip.AddrFrom4([4]byte{10, byte(i), 1, 1})
			k, _, _ := addrKey(a)
			var best *node[int]
			for n := r.v4.root; n != nil && n.contains(k); n = n.child[k.bit(n.bits)] {
				if n.hasPeer {
					best = n
				}
			}
			if best != nil {
				m[a] = best.peer
			}
		}
		return m
	}
	want := snapshot(before)
	tb.RemovePeer(3)
	tb.Insert(pfx("10.5.0.0/16"), 99)
	tb.Insert(pfx("10.0.0.0/8"), 100)
	tb.SetPeer(7, []netip.Prefix{pfx("10.8.0.0/16")})
	if got := snapshot(before); !mapsEqual(got, want) {
		t.Errorf("old root changed by later writes")
	}
}

func mapsEqual[K, V comparable](a, b map[K]V) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// refTable is the brute-force reference: a list scanned in full.
type refTable map[netip.Prefix]int

func (r refTable) lookup(a netip.Addr) (int, bool) {
	a = a.Unmap().WithZone("")
	best, peer := -1, 0
	for p, v := range r {
		if p.Contains(a) && p.Bits() > best {
			best, peer = p.Bits(), v
		}
	}
	return peer, best >= 0
}

// randPrefix draws prefixes from a small pool of networks so that random
// tables are full of overlaps, nesting and shared branch points.
func randPrefix(rng *rand.Rand, v6 bool) netip.Prefix {
	if v6 {
		var b [16]byte
		b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8
		b[4] = byte(rng.IntN(4))
		b[5] = byte(rng.IntN(256))
		for i := 6; i < 16; i++ {
			if rng.IntN(3) == 0 {
				b[i] = byte(rng.IntN(256))
			}
		}
		if rng.IntN(8) == 0 {
			b[0] = byte(rng.IntN(256)) // something outside 2001:db8::/30
		}
		return netip.PrefixFrom(netip.AddrFrom16(b), rng.IntN(129)).Masked()
	}
	b := [4]byte{10, byte(rng.IntN(4)), byte(rng.IntN(256)), byte(rng.IntN(256))}
	if rng.IntN(8) == 0 {
		b[0] = byte(rng.IntN(256))
	}
	return netip.PrefixFrom(netip.AddrFrom4(b), rng.IntN(33)).Masked()
}

func randAddrIn(rng *rand.Rand, p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		if rng.IntN(2) == 1 {
			b[i/8] |= 0x80 >> (i % 8)
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// under moves p into base, keeping p's length if it is longer than base's
// and its bits after base's. Odd seeds of the randomized test use it to put
// the trie's root deep in the address, where the jump table indexes bits
// that straddle the two 64-bit halves of an IPv6 key.
func under(p, base netip.Prefix) netip.Prefix {
	if p.Addr().Is4() != base.Addr().Is4() {
		return p
	}
	pb, bb := p.Addr().AsSlice(), base.Addr().AsSlice()
	for i := range base.Bits() {
		mask := byte(0x80 >> (i % 8))
		pb[i/8] = pb[i/8]&^mask | bb[i/8]&mask
	}
	a, _ := netip.AddrFromSlice(pb)
	return netip.PrefixFrom(a, max(p.Bits(), base.Bits())).Masked()
}

func TestTableRandomAgainstReference(t *testing.T) {
	for seed := range uint64(12) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 0x5eed))
			randPrefix := func(rng *rand.Rand, v6 bool) netip.Prefix {
				p := randPrefix(rng, v6)
				if seed%2 == 1 {
					p = under(p, pfx("10.0.0.0/21"))
					p = under(p, netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 1, 2, 3, 4, 0xff}), 58+int(seed%8)))
				}
				return p
			}
			var tb Table[int]
			ref := refTable{}
			var known []netip.Prefix
			const peers = 8
			for op := range 3000 {
				switch x := rng.IntN(100); {
				case x < 60 || len(known) == 0:
					p := randPrefix(rng, rng.IntN(2) == 0)
					peer := rng.IntN(peers)
					if err := tb.Insert(p, peer); err != nil {
						t.Fatal(err)
					}
					ref[p] = peer
					known = append(known, p)
				case x < 85:
					p := known[rng.IntN(len(known))]
					_, had := ref[p]
					if got := tb.Remove(p); got != had {
						t.Fatalf("op %d: Remove(%v) = %v, want %v", op, p, got, had)
					}
					delete(ref, p)
				case x < 90:
					peer := rng.IntN(peers)
					tb.RemovePeer(peer)
					for p, v := range ref {
						if v == peer {
							delete(ref, p)
						}
					}
				default:
					peer := rng.IntN(peers)
					var ps []netip.Prefix
					for range rng.IntN(6) {
						ps = append(ps, randPrefix(rng, rng.IntN(2) == 0))
					}
					if err := tb.SetPeer(peer, ps); err != nil {
						t.Fatal(err)
					}
					for p, v := range ref {
						if v == peer {
							delete(ref, p)
						}
					}
					for _, p := range ps {
						ref[p] = peer
						known = append(known, p)
					}
				}
				if op%100 != 99 {
					continue
				}
				checkTable(t, &tb)
				if r := tb.root.Load(); seed%2 == 1 && (r.v6.jump == nil || r.v6.root.bits < 58) {
					t.Fatalf("op %d: the IPv6 root is at /%d, not deep as intended", op, r.v6.root.bits)
				}
				for range 200 {
					var a netip.Addr
					switch rng.IntN(8) {
					case 0:
						a = randAddrIn(rng, pfx("0.0.0.0/0"))
					case 1:
						a = randAddrIn(rng, pfx("::/0"))
					case 2, 3:
						a = randAddrIn(rng, randPrefix(rng, rng.IntN(2) == 0))
					default:
						a = randAddrIn(rng, known[rng.IntN(len(known))])
					}
					if a.Is4() && rng.IntN(4) == 0 {
						a = netip.AddrFrom16(a.As16()) // the IPv4-mapped spelling
					}
					want, wantOK := ref.lookup(a)
					got, ok := tb.Lookup(a)
					if got != want || ok != wantOK {
						t.Fatalf("op %d: Lookup(%v) = %d, %v; reference says %d, %v", op, a, got, ok, want, wantOK)
					}
					for peer := range peers {
						if tb.Allowed(peer, a) != (wantOK && want == peer) {
							t.Fatalf("op %d: Allowed(%d, %v) disagrees with the reference", op, peer, a)
						}
					}
				}
				for peer := range peers {
					var want []netip.Prefix
					for p, v := range ref {
						if v == peer {
							want = append(want, p)
						}
					}
					slices.SortFunc(want, comparePrefix)
					if got := tb.Prefixes(peer); !slices.Equal(got, want) {
						t.Fatalf("op %d: Prefixes(%d) = %v, want %v", op, peer, got, want)
					}
				}
			}
		})
	}
}

// TestTableConcurrent runs readers against a writer that keeps rewriting
// the prefixes around a fixed one. Under -race it checks the publication
// protocol; in any mode it checks that no reader ever sees a half-applied
// write (the fixed prefix must never disappear or change owner).
func TestKeyByte(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 100 {
		k := key{rng.Uint64(), rng.Uint64()}
		for i := range uint8(121) {
			want := uint8(0)
			for j := range uint8(8) {
				want = want<<1 | k.bit(i+j)
			}
			if got := keyByte(k, i); got != want {
				t.Fatalf("keyByte(%x, %d) = %#x, want %#x", k, i, got, want)
			}
		}
	}
}

func TestTableConcurrent(t *testing.T) {
	var tb Table[int]
	tb.Insert(pfx("10.1.0.0/16"), 1)
	tb.Insert(pfx("2001:db8:1::/48"), 1)
	var stop atomic.Bool
	var wg sync.WaitGroup
	var lookups atomic.Int64
	errs := make(chan error, 8)
	for r := range 4 {
		wg.Go(func() {
			n := int64(0)
			for !stop.Load() {
				a := netip.AddrFrom4([4]byte{10, 1, byte(r), byte(n)})
				if p, ok := tb.Lookup(a); !ok || p != 1 {
					errs <- fmt.Errorf("Lookup(%v) = %d, %v during writes", a, p, ok)
					return
				}
				if !tb.Allowed(1, addr("2001:db8:1::5")) {
					errs <- fmt.Errorf("Allowed(2001:db8:1::5) = false during writes")
					return
				}
				n++
			}
			lookups.Add(n)
		})
	}
	rng := rand.New(rand.NewPCG(1, 2))
	deadline := time.Now().Add(300 * time.Millisecond)
	writes := 0
	for time.Now().Before(deadline) {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(rng.IntN(4)), byte(rng.IntN(256)), 0}), 8+rng.IntN(17)).Masked()
		if p.Bits() >= 16 && p.Addr().As4()[1] == 1 {
			continue // would shadow the fixed prefix
		}
		q := netip.PrefixFrom(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, byte(rng.IntN(4))}), 32+rng.IntN(17)).Masked()
		if q.Bits() >= 48 && q.Addr().As16()[5] == 1 {
			continue
		}
		tb.Insert(p, 2)
		tb.Insert(q, 2)
		if writes%3 == 0 {
			tb.RemovePeer(2)
		}
		writes++
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	t.Logf("%d writes, %d lookups", writes, lookups.Load())
}

func benchTable(n int, v6 bool) (*Table[int], []netip.Addr) {
	rng := rand.New(rand.NewPCG(uint64(n), 42))
	var tb Table[int]
	var ps []netip.Prefix
	for len(ps) < n {
		var p netip.Prefix
		if v6 {
			var b [16]byte
			for i := range b {
				b[i] = byte(rng.IntN(256))
			}
			b[0], b[1] = 0x20, 0x01
			// Mostly /48-/64 site and subnet prefixes, some /128 hosts.
			bitsN := 48 + rng.IntN(17)
			if rng.IntN(8) == 0 {
				bitsN = 128
			}
			p = netip.PrefixFrom(netip.AddrFrom16(b), bitsN).Masked()
		} else {
			b := [4]byte{byte(rng.IntN(224)), byte(rng.IntN(256)), byte(rng.IntN(256)), byte(rng.IntN(256))}
			bitsN := 16 + rng.IntN(9)
			if rng.IntN(4) == 0 {
				bitsN = 32
			}
			p = netip.PrefixFrom(netip.AddrFrom4(b), bitsN).Masked()
		}
		if tb.Insert(p, len(ps)) == nil {
			ps = append(ps, p)
		}
	}
	// Half the probes hit an inserted prefix, half are random (mostly
	// misses), in a fixed random order so branch prediction cannot learn it.
	addrs := make([]netip.Addr, 4096)
	for i := range addrs {
		if i%2 == 0 {
			addrs[i] = randAddrIn(rng, ps[rng.IntN(len(ps))])
		} else if v6 {
			addrs[i] = randAddrIn(rng, pfx("2001::/16"))
		} else {
			addrs[i] = randAddrIn(rng, pfx("0.0.0.0/0"))
		}
	}
	return &tb, addrs
}

func BenchmarkLookup(b *testing.B) {
	for _, fam := range []string{"v4", "v6"} {
		for _, n := range []int{10, 10000} {
			b.Run(fmt.Sprintf("%s/%d", fam, n), func(b *testing.B) {
				tb, addrs := benchTable(n, fam == "v6")
				b.ReportAllocs()
				hits := 0
				for i := 0; b.Loop(); i++ {
					if _, ok := tb.Lookup(addrs[i&(len(addrs)-1)]); ok {
						hits++
					}
				}
				if hits == 0 {
					b.Fatal("no lookup hit")
				}
			})
		}
	}
}

// BenchmarkLookupParallel shows that readers do not contend: ns/op should
// fall with GOMAXPROCS rather than rise.
func BenchmarkLookupParallel(b *testing.B) {
	tb, addrs := benchTable(10000, false)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := rand.IntN(len(addrs))
		for pb.Next() {
			tb.Lookup(addrs[i&(len(addrs)-1)])
			i++
		}
	})
}

// BenchmarkInsert is the writer's cost per prefix into a 10,000-prefix
// table: a path copy and a new root.
func BenchmarkInsert(b *testing.B) {
	tb, _ := benchTable(10000, false)
	rng := rand.New(rand.NewPCG(7, 7))
	b.ReportAllocs()
	for b.Loop() {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(rng.IntN(224)), byte(rng.IntN(256)), byte(rng.IntN(256)), 0}), 24)
		tb.Insert(p, 1)
		tb.Remove(p)
	}
}

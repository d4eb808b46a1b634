package routing

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
)

// Table maps IPv4 and IPv6 prefixes to peers and answers longest-prefix
// matches. Lookup runs for every packet in both directions, so it is
// lock-free and allocation-free: the table is a pair of immutable
// path-compressed binary tries (one per family) published through an atomic
// pointer. Writers serialise on a mutex and copy only the nodes on the paths
// they change, so readers never wait for writers or for each other, and
// always see either the whole of a write or none of it.
//
// The zero Table is empty and ready to use. A Table must not be copied after
// first use.
type Table[P comparable] struct {
	root atomic.Pointer[roots[P]]

	mu     sync.Mutex // serialises writers; guards everything below
	gen    uint64     // generation of the write in progress, see own
	byPeer map[P]map[netip.Prefix]struct{}
}

type roots[P comparable] struct {
	v4, v6 trie[P]
}

// trie is one family's trie plus a jump table that replaces its top levels.
// A path-compressed binary trie of n random prefixes is about log2(n) nodes
// deep, and each level is a dependent load, so at 10,000 prefixes a lookup
// spends most of its time waiting on memory. The jump table is indexed by
// the 8 address bits that follow the root's prefix and says where the walk
// would be after them, which removes up to 8 levels per lookup. It is
// rebuilt by every write that changes the trie (one pass over the top
// levels and 4 KiB), which writes can afford and readers cannot.
type trie[P comparable] struct {
	root *node[P]
	jump *[256]jump[P] // nil when the trie is too small or too long for one
}

type jump[P comparable] struct {
	start *node[P] // where to continue the walk; its prefix is still to be checked
	best  *node[P] // the longest peer-carrying prefix seen above start
}

// node is a trie node. A node either carries a peer (hasPeer) or is a pure
// branch point with exactly two children; remove keeps it that way, so the
// depth of a lookup is bounded by the number of distinct branch points on
// the path, not by the address length.
//
// Nodes reachable from a published root are immutable. A writer may mutate
// a node in place only if it created it during the current write
// (gen == Table.gen), which lets one write that touches many prefixes
// (RemovePeer, SetPeer) copy each node at most once.
type node[P comparable] struct {
	child   [2]*node[P]
	key     key // the prefix, masked to bits
	peer    P
	gen     uint64
	bits    uint8
	hasPeer bool
}

// key is an address left-aligned in 128 bits; IPv4 uses the top 32.
type key struct{ hi, lo uint64 }

func maskOf(n uint8) key {
	// Shifts of 64 or more give 0 in Go, which is what the masks need.
	var m key
	if n >= 64 {
		m.hi = ^uint64(0)
		m.lo = ^uint64(0) << (128 - uint(n))
	} else {
		m.hi = ^uint64(0) << (64 - uint(n))
	}
	return m
}

func (k key) and(m key) key { return key{k.hi & m.hi, k.lo & m.lo} }

// bit returns bit i counted from the most significant end. For i == 128
// (asked only at a /128 node, which has no children) it returns 0.
func (k key) bit(i uint8) uint8 {
	if i < 64 {
		return uint8(k.hi>>(63-i)) & 1
	}
	return uint8(k.lo>>(127-uint(i))) & 1
}

// commonLen is the number of leading bits a and b share.
func commonLen(a, b key) uint8 {
	if x := a.hi ^ b.hi; x != 0 {
		return uint8(bits.LeadingZeros64(x))
	}
	return uint8(64 + bits.LeadingZeros64(a.lo^b.lo))
}

// contains reports whether k lies within n's prefix. Shifts of 64 or more
// give 0 in Go, which makes /0 (and the unused half of the key) match.
func (n *node[P]) contains(k key) bool {
	if n.bits <= 64 {
		return (k.hi^n.key.hi)>>(64-uint(n.bits)) == 0
	}
	return k.hi == n.key.hi && (k.lo^n.key.lo)>>(128-uint(n.bits)) == 0
}

// addrKey places a into the trie it belongs to. IPv4-mapped IPv6 addresses
// are matched as IPv4 (see the package documentation); zones are ignored
// because allowed prefixes carry none.
func addrKey(a netip.Addr) (k key, v4 bool, ok bool) {
	switch {
	case a.Is4() || a.Is4In6():
		b := a.As16()
		return key{hi: uint64(binary.BigEndian.Uint32(b[12:])) << 32}, true, true
	case a.Is6():
		b := a.As16()
		return key{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}, false, true
	}
	return key{}, false, false
}

// Lookup returns the peer of the longest prefix containing a.
func (t *Table[P]) Lookup(a netip.Addr) (P, bool) {
	if n := t.lookup(a); n != nil {
		return n.peer, true
	}
	var zero P
	return zero, false
}

// Allowed reports whether src may be the source address of a packet that
// arrived from peer: the longest prefix containing src must belong to peer.
// Checking the longest match rather than "any prefix of peer contains src"
// is what keeps a peer that holds 10.0.0.0/8 from using an address that a
// more specific prefix gives to someone else.
func (t *Table[P]) Allowed(peer P, src netip.Addr) bool {
	n := t.lookup(src)
	return n != nil && n.peer == peer
}

func (t *Table[P]) lookup(a netip.Addr) *node[P] {
	r := t.root.Load()
	if r == nil {
		return nil
	}
	k, v4, ok := addrKey(a)
	if !ok {
		return nil
	}
	if v4 {
		return r.v4.lookup4(k)
	}
	return r.v6.lookup6(k)
}

func (f *trie[P]) start(k key) (n, best *node[P]) {
	n = f.root
	if f.jump != nil {
		// Every prefix lies within the root's, so an address outside it
		// matches nothing.
		if !n.contains(k) {
			return nil, nil
		}
		j := &f.jump[keyByte(k, n.bits)]
		return j.start, j.best
	}
	return n, nil
}

func (f *trie[P]) lookup4(k key) *node[P] {
	n, best := f.start(k)
	// IPv4 keys live in the top 32 bits of hi, so the IPv4 walk needs
	// neither the low word nor the branch that picks it.
	for ; n != nil && (k.hi^n.key.hi)>>(64-uint(n.bits)) == 0; n = n.child[(k.hi>>(63-uint(n.bits)))&1] {
		if n.hasPeer {
			best = n
		}
	}
	return best
}

func (f *trie[P]) lookup6(k key) *node[P] {
	n, best := f.start(k)
	for ; n != nil && n.contains(k); n = n.child[k.bit(n.bits)] {
		if n.hasPeer {
			best = n
		}
	}
	return best
}

// keyByte returns the 8 bits of k that start at bit i (i <= 120).
func keyByte(k key, i uint8) uint8 {
	switch {
	case i <= 56:
		return uint8(k.hi >> (56 - i))
	case i >= 64:
		return uint8(k.lo >> (120 - uint(i)))
	}
	return uint8(k.hi<<(i-56) | k.lo>>(120-uint(i)))
}

// rebuild recomputes the jump table after a write changed the trie.
func (f *trie[P]) rebuild(maxBits uint8) {
	f.jump = nil
	root := f.root
	if root == nil || (root.child[0] == nil && root.child[1] == nil) || root.bits+8 > maxBits {
		return
	}
	j := new([256]jump[P])
	fill(j, root, nil, root.bits, 0, len(j))
	f.jump = j
}

// fill sets j[lo:hi], the entries whose walk reaches n having found best,
// visiting each node above the jump depth once.
func fill[P comparable](j *[256]jump[P], n, best *node[P], base uint8, lo, hi int) {
	end := base + 8
	if n == nil || n.bits >= end {
		// The walk stops here: the next bit to branch on is not among
		// the 8 the entry is indexed by.
		for i := lo; i < hi; i++ {
			j[i] = jump[P]{start: n, best: best}
		}
		return
	}
	// n's prefix fixes the top n.bits-base of the 8 bits: the entries it
	// contains are one aligned block within [lo, hi).
	size := 1 << (end - n.bits)
	nlo := int(keyByte(n.key, base)) &^ (size - 1)
	for i := lo; i < hi; i++ {
		if i < nlo || i >= nlo+size {
			j[i] = jump[P]{best: best}
		}
	}
	if n.hasPeer {
		best = n
	}
	fill(j, n.child[0], best, base, nlo, nlo+size/2)
	fill(j, n.child[1], best, base, nlo+size/2, nlo+size)
}

// normPrefix validates p and returns its trie coordinates and its canonical
// (masked) form. Host bits are cleared rather than rejected, as WireGuard
// does for AllowedIPs, so "10.0.0.1/24" means 10.0.0.0/24.
func normPrefix(p netip.Prefix) (netip.Prefix, key, bool, error) {
	if !p.IsValid() {
		return p, key{}, false, fmt.Errorf("routing: invalid prefix %v", p)
	}
	a := p.Addr()
	if a.Is4In6() {
		// Lookups unmap addresses, so such a prefix could never match:
		// storing it would silently drop the peer's traffic.
		return p, key{}, false, fmt.Errorf("routing: prefix %v is IPv4-mapped IPv6; use the IPv4 form", p)
	}
	if a.Is6() && p.Bits() >= 96 && netip.PrefixFrom(a, 96).Masked() == v4MappedPrefix {
		return p, key{}, false, fmt.Errorf("routing: prefix %v is IPv4-mapped IPv6; use the IPv4 form", p)
	}
	p = p.Masked()
	k, v4, _ := addrKey(p.Addr())
	return p, k, v4, nil
}

var v4MappedPrefix = netip.MustParsePrefix("::ffff:0:0/96")

// Insert maps prefix to peer. A prefix that already belongs to another peer
// moves to this one, the way reassigning an allowed IP does in WireGuard.
func (t *Table[P]) Insert(prefix netip.Prefix, peer P) error {
	p, k, v4, err := normPrefix(prefix)
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.begin()
	t.insertLocked(&w, p, k, v4, peer)
	t.publish(&w)
	return nil
}

// Remove deletes prefix (after clearing its host bits) and reports whether
// it was present.
func (t *Table[P]) Remove(prefix netip.Prefix) bool {
	p, k, v4, err := normPrefix(prefix)
	if err != nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.begin()
	if !t.removeLocked(&w, p, k, v4) {
		return false
	}
	t.publish(&w)
	return true
}

// RemovePeer deletes every prefix of peer in one atomic step.
func (t *Table[P]) RemovePeer(peer P) {
	t.mu.Lock()
	defer t.mu.Unlock()
	set := t.byPeer[peer]
	if len(set) == 0 {
		return
	}
	w := t.begin()
	for p := range set {
		_, k, v4, _ := normPrefix(p)
		t.removeLocked(&w, p, k, v4)
	}
	t.publish(&w)
}

// SetPeer replaces the prefixes of peer with prefixes in one atomic step,
// so that reloading a peer's allowed IPs never leaves a moment in which
// its traffic has nowhere to go. Prefixes held by other peers move to peer.
// Nothing changes if any prefix is invalid.
func (t *Table[P]) SetPeer(peer P, prefixes []netip.Prefix) error {
	type norm struct {
		p  netip.Prefix
		k  key
		v4 bool
	}
	want := make([]norm, 0, len(prefixes))
	wantSet := make(map[netip.Prefix]struct{}, len(prefixes))
	for _, prefix := range prefixes {
		p, k, v4, err := normPrefix(prefix)
		if err != nil {
			return err
		}
		want = append(want, norm{p, k, v4})
		wantSet[p] = struct{}{}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.begin()
	for p := range t.byPeer[peer] {
		if _, keep := wantSet[p]; !keep {
			_, k, v4, _ := normPrefix(p)
			t.removeLocked(&w, p, k, v4)
		}
	}
	for _, n := range want {
		t.insertLocked(&w, n.p, n.k, n.v4, peer)
	}
	t.publish(&w)
	return nil
}

// Prefixes returns the prefixes of peer, sorted.
func (t *Table[P]) Prefixes(peer P) []netip.Prefix {
	t.mu.Lock()
	set := t.byPeer[peer]
	out := make([]netip.Prefix, 0, len(set))
	for p := range set {
		out = append(out, p)
	}
	t.mu.Unlock()
	slices.SortFunc(out, comparePrefix)
	return out
}

func comparePrefix(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}

// publish makes a write visible to readers.
func (t *Table[P]) publish(w *roots[P]) {
	old := t.root.Load()
	if old == nil || old.v4.root != w.v4.root {
		w.v4.rebuild(32)
	}
	if old == nil || old.v6.root != w.v6.root {
		w.v6.rebuild(128)
	}
	t.root.Store(w)
}

// begin starts a write: it returns a private copy of the roots to modify
// and publish, and a new generation so that nodes made by earlier writes,
// which readers may hold, are never mutated.
func (t *Table[P]) begin() roots[P] {
	t.gen++
	if r := t.root.Load(); r != nil {
		return *r
	}
	return roots[P]{}
}

func (t *Table[P]) insertLocked(w *roots[P], p netip.Prefix, k key, v4 bool, peer P) {
	bitsN := uint8(p.Bits())
	root := &w.v6.root
	if v4 {
		root = &w.v4.root
	}
	if old := exact(*root, k, bitsN); old != nil {
		if old.peer == peer {
			return
		}
		t.unindex(old.peer, p)
	}
	*root = t.insert(*root, k, bitsN, peer)
	if t.byPeer == nil {
		t.byPeer = make(map[P]map[netip.Prefix]struct{})
	}
	set := t.byPeer[peer]
	if set == nil {
		set = make(map[netip.Prefix]struct{})
		t.byPeer[peer] = set
	}
	set[p] = struct{}{}
}

func (t *Table[P]) removeLocked(w *roots[P], p netip.Prefix, k key, v4 bool) bool {
	bitsN := uint8(p.Bits())
	root := &w.v6.root
	if v4 {
		root = &w.v4.root
	}
	old := exact(*root, k, bitsN)
	if old == nil {
		return false
	}
	t.unindex(old.peer, p)
	*root, _ = t.remove(*root, k, bitsN)
	return true
}

func (t *Table[P]) unindex(peer P, p netip.Prefix) {
	set := t.byPeer[peer]
	delete(set, p)
	if len(set) == 0 {
		delete(t.byPeer, peer)
	}
}

// exact returns the node holding exactly k/n, if any.
func exact[P comparable](n *node[P], k key, bitsN uint8) *node[P] {
	for n != nil && n.bits <= bitsN && n.contains(k) {
		if n.bits == bitsN {
			if n.hasPeer {
				return n
			}
			return nil
		}
		n = n.child[k.bit(n.bits)]
	}
	return nil
}

func (t *Table[P]) newNode(k key, bitsN uint8) *node[P] {
	return &node[P]{key: k.and(maskOf(bitsN)), bits: bitsN, gen: t.gen}
}

// own returns n itself if the current write created it, else a copy that
// the write may mutate.
func (t *Table[P]) own(n *node[P]) *node[P] {
	if n.gen == t.gen {
		return n
	}
	c := *n
	c.gen = t.gen
	return &c
}

func (t *Table[P]) insert(n *node[P], k key, bitsN uint8, peer P) *node[P] {
	if n == nil {
		m := t.newNode(k, bitsN)
		m.hasPeer, m.peer = true, peer
		return m
	}
	c := min(commonLen(n.key, k), n.bits, bitsN)
	switch {
	case c == n.bits && c == bitsN:
		m := t.own(n)
		m.hasPeer, m.peer = true, peer
		return m
	case c == n.bits:
		b := k.bit(c)
		m := t.own(n)
		m.child[b] = t.insert(n.child[b], k, bitsN, peer)
		return m
	case c == bitsN:
		// The new prefix covers n: it becomes n's parent.
		m := t.newNode(k, bitsN)
		m.hasPeer, m.peer = true, peer
		m.child[n.key.bit(c)] = n
		return m
	default:
		// The two diverge below both: join them under a branch point.
		m := t.newNode(k, c)
		leaf := t.newNode(k, bitsN)
		leaf.hasPeer, leaf.peer = true, peer
		m.child[k.bit(c)] = leaf
		m.child[n.key.bit(c)] = n
		return m
	}
}

func (t *Table[P]) remove(n *node[P], k key, bitsN uint8) (*node[P], bool) {
	if n == nil || n.bits > bitsN || !n.contains(k) {
		return n, false
	}
	if n.bits == bitsN {
		if !n.hasPeer {
			return n, false
		}
		m := t.own(n)
		var zero P
		m.hasPeer, m.peer = false, zero
		return collapse(m), true
	}
	b := k.bit(n.bits)
	c, ok := t.remove(n.child[b], k, bitsN)
	if !ok {
		return n, false
	}
	m := t.own(n)
	m.child[b] = c
	return collapse(m), true
}

// collapse drops a peerless node that no longer branches.
func collapse[P comparable](m *node[P]) *node[P] {
	switch {
	case m.hasPeer:
		return m
	case m.child[0] == nil:
		return m.child[1]
	case m.child[1] == nil:
		return m.child[0]
	}
	return m
}

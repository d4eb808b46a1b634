package session

import (
	"bytes"
	"encoding/binary"
	"testing"
)

// Identity hiding in the simulated network (sim_test.go): the observer,
// the listener's handling of sealed hellos, key rotation and restarts.

// observer reads every byte that goes on the wire, as it goes, for the
// needles it was told of: signature keys, group IDs, KeyPackage keys. A
// side learns each of them (watch) before it can send it, so a scan that
// sees bytes once, against the needles known then, misses nothing.
// Needles are indexed by their first four bytes, which makes the scan one
// map lookup per byte whatever their number.
type observer struct {
	needles map[uint32][][]byte
	what    map[string]string
	found   map[string]bool
	// tail holds each stream direction's last bytes, for a needle cut
	// across two writes.
	tail [2][]byte
	max  int
}

// note adds a needle; nothing shorter than a group ID is worth looking
// for (a closed session's group has forgotten its ID).
func (o *observer) note(b []byte, what string) {
	if len(b) < groupIDLen {
		return
	}
	if o.what == nil {
		o.needles, o.what, o.found = map[uint32][][]byte{}, map[string]string{}, map[string]bool{}
	}
	if _, ok := o.what[string(b)]; ok {
		return
	}
	o.what[string(b)] = what
	k := binary.LittleEndian.Uint32(b)
	o.needles[k] = append(o.needles[k], bytes.Clone(b))
	o.max = max(o.max, len(b))
}

// scan reads b, a datagram (dir -1) or a piece of stream dir's bytes.
func (o *observer) scan(dir int, b []byte) {
	data := b
	if dir >= 0 {
		data = append(o.tail[dir], b...)
	}
	for i := 0; i+4 <= len(data); i++ {
		for _, nd := range o.needles[binary.LittleEndian.Uint32(data[i:])] {
			if bytes.HasPrefix(data[i:], nd) {
				o.found[string(nd)] = true
			}
		}
	}
	if dir >= 0 {
		keep := min(len(data), o.max)
		o.tail[dir] = append(o.tail[dir][:0:0], data[len(data)-keep:]...)
	}
}

// watch notes what e's session knows that must never show on the wire
// (its group ID, its KeyPackage's keys), and what the process keeps
// across sessions (the peer's hello key, the peer's latest hello).
func (n *simNet) watch(e *simEnd) {
	s := e.s
	note := n.obs.note
	if s.group != nil {
		note(s.group.GroupID(), "group ID")
	}
	if s.kp != nil {
		note(s.kp.InitKey, "KeyPackage init key")
		note(s.kp.LeafNode.EncryptionKey, "KeyPackage encryption key")
		note(s.kp.Signature, "KeyPackage signature")
	}
	if k := s.PeerHelloKey(); k != nil {
		if !bytes.Equal(k, e.peerKey) {
			n.learned++
		}
		e.peerKey = k
	}
	if t := s.HelloTime(); t.After(e.helloSeen) {
		e.helloSeen = t
	}
}

// audit is the observer's verdict: nothing identifying in any byte.
func (n *simNet) audit() {
	n.tb.Helper()
	if seen := n.seen(); len(seen) > 0 {
		n.tb.Fatalf("seed %d: the observer saw on the wire: %v", n.seed, seen)
	}
}

// seen lists what the observer found of what it must not see.
func (n *simNet) seen() []string {
	var found []string
	for nd := range n.obs.found {
		found = append(found, n.obs.what[nd])
	}
	return found
}

// The observer is not blind: run without hiding, it sees the signature
// keys, a KeyPackage and the group IDs (of resumptions) in the clear.
func TestSimObserverSeesPlaintext(t *testing.T) {
	for _, mode := range []Transport{Datagram, Stream} {
		id := testSuites[0]
		n := runSim(t, mode, 7, id, newKeys(t, id), newKeys(t, id), 20, 20, false)
		seen := map[string]bool{}
		for _, w := range n.seen() {
			seen[w] = true
		}
		for _, want := range []string{"initiator signature key", "KeyPackage init key", "group ID"} {
			if !seen[want] {
				t.Errorf("%s: the observer missed the plaintext %s (saw %v)", modeName(mode), want, seen)
			}
		}
	}
}

// rotate gives one side a new hello key; its previous one stays valid,
// the one before is retired.
func (n *simNet) rotate() {
	e := n.ends[n.rng.IntN(2)]
	installKey(n.tb, e.ring, n.suite, e.keys, n.now)
	n.rotations++
}

// reloadKeyring is what a restarted process loads from disk: the same
// keys, an empty replay set.
func reloadKeyring(tb testing.TB, ring *HelloKeyring) *HelloKeyring {
	tb.Helper()
	fresh, err := NewHelloKeyring(ring.suite.ID, 0)
	if err != nil {
		tb.Fatal(err)
	}
	for _, k := range []*ringKey{ring.keys[1], ring.keys[0]} {
		if k == nil {
			continue
		}
		if err := fresh.Install(&HelloKeyPair{Public: k.pair.Public, Private: bytes.Clone(k.pair.Private)}); err != nil {
			tb.Fatal(err)
		}
	}
	return fresh
}

// listenSealed is the listener for an established side r when hiding:
// it reassembles an unaddressed message from the peer's new index, opens
// a sealed hello once with the side's keyring to learn what it is, and
// hands a resumption to the established session, a fresh ClientHello to
// a new responder session (the candidate of currentd), anything else
// (key requests, hellos for an unknown key, replays) to the established
// session, which answers statelessly or from its cache, or drops.
func (n *simNet) listenSealed(r *simEnd, f flight, sender uint32) bool {
	fr, ok := ParseHandshakeFragment(f.d)
	if !ok {
		return false
	}
	key := reasmKey{plain: true, sender: sender, id: fr.MessageID}
	n.asmRaw[key] = append(n.asmRaw[key], f.d)
	env, err := n.asm.add(n.now, key, fr.Total, fr.Offset, fr.Data, DefaultReassemblyBytes)
	if err != nil || env == nil {
		return true
	}
	raw := n.asmRaw[key]
	delete(n.asmRaw, key)
	toSession := func() {
		for _, d := range raw {
			_ = r.s.HandleDatagram(n.now, d)
		}
		n.check(r)
	}
	m, err := DecodeControl(env)
	if err != nil {
		return true
	}
	if _, ok := m.(*SealedHello); !ok {
		toSession()
		return true
	}
	oh, err := r.ring.OpenHello(n.now, env)
	switch {
	case err != nil:
		toSession()
	case oh.Resumption:
		_ = r.s.HandleOpenedHello(n.now, oh, sender)
		n.check(r)
	default:
		cfg := n.config(r)
		cfg.Role = Responder
		s, err := New(cfg)
		n.must(err)
		n.must(s.Start(n.now))
		r.s.Close(n.now)
		r.s.Outgoing()
		n.check(r)
		r.s = s
		_ = s.HandleOpenedHello(n.now, oh, sender)
		n.check(r)
	}
	return true
}

package session

import (
	"bytes"
	"testing"
)

// Identity hiding in the simulated network (sim_test.go): the observer,
// the listener's handling of sealed hellos, key rotation and restarts.

// observe records bytes that went on the wire.
func (n *simNet) observe(b []byte) {
	n.wire = append(n.wire, bytes.Clone(b))
}

// watch notes what e's session knows that must never show on the wire
// (its group ID, its KeyPackage's keys), and what the process keeps
// across sessions (the peer's hello key, the peer's latest hello).
func (n *simNet) watch(e *simEnd) {
	s := e.s
	note := func(b []byte, what string) {
		// A closed session's group has forgotten its ID; nothing that
		// short is a needle worth looking for anyway.
		if len(b) >= groupIDLen {
			n.secrets[string(b)] = what
		}
	}
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
	for _, e := range n.ends {
		n.watch(e)
	}
	all := bytes.Join(n.wire, nil)
	var found []string
	for secret, what := range n.secrets {
		if bytes.Contains(all, []byte(secret)) {
			found = append(found, what)
		}
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

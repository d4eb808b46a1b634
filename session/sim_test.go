package session

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/current-vpn/current/session/mls"
)

// The simulated network: a deterministic, seeded model of the transport
// between two peers and a virtual clock driven by the sessions' own timers.
// In datagram mode it is UDP with loss, duplication, reordering (random
// delay) and an MTU; in stream mode it is one TCP connection per direction
// pair, a byte stream cut into arbitrary chunks delivered in order after
// random delays, which can break (everything in flight is lost and both
// sides restart, resuming from the group they persisted). A scripted run
// sends packets and starts updates from both sides (collisions included),
// restarts one side or both at once with resumption (in datagram mode
// both resume as initiator, as two currentd peers with endpoints do),
// restarts one side from a stale copy of its state, then heals the
// network and checks the invariants:
//
//   - both sides end established in the same epoch;
//   - every delivered packet is one that was sent, unaltered, delivered at
//     most once (which also means nothing was opened under a wrong key:
//     the AEAD would have produced garbage or failed);
//   - no session closed.
//
// With identity hiding (every seed of TestSimulatedNetwork), both sides
// hold hello keys and seal their hellos; each side rotates its key now
// and then, forgets its replay set when it restarts, and learns the
// peer's key on first contact or from the last session's cache. An
// observer on the wire reads every byte and checks at the end that no
// signature key (which is also the credential), group ID or KeyPackage
// of either side's ever appeared in it.

const simMTU = 1280 - 48

type simEnd struct {
	name  string
	s     *Session
	keys  keyPair
	pin   []byte
	role  Role
	tag   uint64 // high bit of packet ids
	next  uint64
	sent  map[uint64][]byte
	seen  map[uint64]bool
	epoch uint64
	// state is what the side persisted at its last restart (stream mode).
	state []byte
	// saved is what the side persisted at its last restart (datagram
	// mode), old a stale copy of some earlier state (snapshot).
	saved, old *simSaved

	// Identity hiding: our hello keys, the peer's hello key as we last
	// verified it, and the latest hello timestamp of the peer's we
	// accepted (kept while the process lives, lost when it crashes).
	ring      *HelloKeyring
	peerKey   []byte
	helloSeen time.Time
}

// simSaved is a persisted datagram session, as currentd's state file.
type simSaved struct {
	state       []byte
	local, peer uint32
}

type flight struct {
	at  time.Time
	seq int
	to  int
	d   []byte
}

type simNet struct {
	tb        testing.TB
	rng       *rand.Rand
	now       time.Time
	ends      [2]*simEnd
	q         []flight
	seq       int
	loss, dup float64
	maxDelay  time.Duration
	suite     mls.CipherSuiteID
	delivered int
	restarts  int
	both      int // restarts of both sides at once
	stale     int // restarts from a stale state
	resumed   int
	updates   int // Update calls that started an update
	seed      uint64
	mode      Transport
	lastAt    [2]time.Time // stream mode: in-order delivery per direction

	hide bool
	// The observer of every byte that goes on the wire (sim_hiding_test.go).
	obs       observer
	rotations int
	// asm holds the fragments of sealed hellos the listener reads.
	asm     reassembler
	asmRaw  map[reasmKey][][]byte
	learned int // hello keys learned by a HelloKeyAnswer
}

func (n *simNet) config(e *simEnd) Config {
	c := Config{
		Role: e.role, Suite: n.suite, SigningKey: e.keys.priv, PeerPublicKey: e.pin,
		Rand: n.sessionRand(), Transport: n.mode, MaxDatagramSize: simMTU,
		UpdateInterval: 8 * time.Second,
	}
	if n.hide {
		c.HideIdentity, c.HelloKeys, c.PeerHelloKey, c.HelloFloor = true, e.ring, e.peerKey, e.helloSeen
	}
	return c
}

// sessionRand seeds a session's randomness from the network's: 256 seeds
// (newSeeded) would make two sessions of a run draw the same receiver
// index now and then, which a real peer does with probability 2^-32.
func (n *simNet) sessionRand() io.Reader {
	var seed [32]byte
	for i := 0; i < len(seed); i += 8 {
		binary.LittleEndian.PutUint64(seed[i:], n.rng.Uint64())
	}
	return seeded{rand.NewChaCha8(seed)}
}

func newSimNet(tb testing.TB, mode Transport, seed uint64, suite mls.CipherSuiteID, ik, rk keyPair, hide bool) *simNet {
	rng := rand.New(rand.NewPCG(seed, 0xc0ffee+uint64(mode)))
	n := &simNet{tb: tb, rng: rng, now: t0, suite: suite, seed: seed, mode: mode, hide: hide,
		loss: 0.2 * rng.Float64(), dup: 0.1 * rng.Float64(),
		maxDelay: time.Duration(1+rng.IntN(200)) * time.Millisecond}
	n.ends[0] = &simEnd{name: "initiator", keys: ik, pin: rk.pub, role: Initiator, sent: map[uint64][]byte{}, seen: map[uint64]bool{}}
	n.ends[1] = &simEnd{name: "responder", keys: rk, pin: ik.pub, role: Responder, tag: 1 << 63, sent: map[uint64][]byte{}, seen: map[uint64]bool{}}
	if mode == Stream {
		n.loss, n.dup = 0, 0
	}
	n.obs.note(ik.pub, "initiator signature key")
	n.obs.note(rk.pub, "responder signature key")
	if hide {
		n.asmRaw = map[reasmKey][][]byte{}
		for _, e := range n.ends {
			e.ring = newKeyring(tb, suite, e.keys, t0)
		}
	}
	for _, e := range n.ends {
		s, err := New(n.config(e))
		if err != nil {
			tb.Fatal(err)
		}
		e.s = s
	}
	n.must(n.ends[1].s.Start(n.now))
	n.must(n.ends[0].s.Start(n.now))
	return n
}

func (n *simNet) must(err error) {
	n.tb.Helper()
	if err != nil {
		n.tb.Fatal(err)
	}
}

// collect moves every side's outgoing datagrams or bytes into the network.
func (n *simNet) collect() {
	for _, e := range n.ends {
		n.watch(e)
	}
	if n.mode == Stream {
		n.collectStream()
		return
	}
	for i, e := range n.ends {
		for _, d := range e.s.Outgoing() {
			n.obs.scan(-1, d)
			if len(d) > simMTU {
				n.tb.Fatalf("%s sent a %d-byte datagram", e.name, len(d))
			}
			copies := 1
			if n.rng.Float64() < n.dup {
				copies = 2
			}
			for range copies {
				if n.rng.Float64() < n.loss {
					continue
				}
				delay := time.Duration(n.rng.Int64N(int64(n.maxDelay)))
				n.q = append(n.q, flight{at: n.now.Add(delay), seq: n.seq, to: 1 - i, d: bytes.Clone(d)})
				n.seq++
			}
		}
	}
}

// collectStream cuts each side's byte stream into chunks of random size
// and delay, delivered in order.
func (n *simNet) collectStream() {
	for i, e := range n.ends {
		var b []byte
		for _, o := range e.s.Outgoing() {
			n.obs.scan(i, o)
			b = append(b, o...)
		}
		for len(b) > 0 {
			k := min(len(b), 1+n.rng.IntN(2000))
			at := n.now.Add(time.Duration(n.rng.Int64N(int64(n.maxDelay))))
			if at.Before(n.lastAt[1-i]) {
				at = n.lastAt[1-i]
			}
			n.lastAt[1-i] = at
			n.q = append(n.q, flight{at: at, seq: n.seq, to: 1 - i, d: bytes.Clone(b[:k])})
			n.seq++
			b = b[k:]
		}
	}
}

func (n *simNet) earliest(limit time.Time) time.Time {
	t := limit
	for _, f := range n.q {
		if f.at.Before(t) {
			t = f.at
		}
	}
	for _, e := range n.ends {
		if nt := e.s.NextTimeout(); !nt.IsZero() && nt.Before(t) {
			t = nt
		}
	}
	if t.Before(n.now) {
		t = n.now
	}
	return t
}

// advance runs the network until the virtual clock reaches limit.
func (n *simNet) advance(limit time.Time) {
	for {
		n.collect()
		t := n.earliest(limit)
		if t.After(limit) || (t.Equal(limit) && !n.pending(limit)) {
			n.now = limit
			return
		}
		n.now = t
		n.step()
	}
}

func (n *simNet) pending(t time.Time) bool {
	for _, f := range n.q {
		if !f.at.After(t) {
			return true
		}
	}
	for _, e := range n.ends {
		if nt := e.s.NextTimeout(); !nt.IsZero() && !nt.After(t) {
			return true
		}
	}
	return false
}

// takeDue sorts q by arrival (and sending order among equal times) and
// splits off the flights due at now.
func takeDue(q []flight, now time.Time) (due, rest []flight) {
	slices.SortFunc(q, func(a, b flight) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return a.seq - b.seq
	})
	k := 0
	for k < len(q) && !q[k].at.After(now) {
		k++
	}
	return q[:k:k], q[k:]
}

// step delivers what is due and fires due timers.
func (n *simNet) step() {
	var due []flight
	due, n.q = takeDue(n.q, n.now)
	for _, f := range due {
		e := n.ends[f.to]
		if n.mode == Stream {
			if err := e.s.HandleStream(n.now, f.d); err != nil {
				n.tb.Fatalf("seed %d: %s: HandleStream: %v", n.seed, e.name, err)
			}
			n.check(e)
			continue
		}
		if n.listen(f) {
			continue
		}
		err := e.s.HandleDatagram(n.now, f.d)
		if err != nil && !errors.Is(err, ErrDropped) {
			n.tb.Fatalf("seed %d: %s: HandleDatagram at %v: %v", n.seed, e.name, n.now.Sub(t0), err)
		}
		n.check(e)
	}
	for _, e := range n.ends {
		if nt := e.s.NextTimeout(); !nt.IsZero() && !nt.After(n.now) {
			if err := e.s.HandleTimeout(n.now); err != nil {
				n.tb.Fatalf("seed %d: %s: HandleTimeout at %v: %v (phase %d waiting %v epoch %d resuming %v peer epoch %d waiting %v)", n.seed, e.name, n.now.Sub(t0), err, e.s.phase, e.s.waiting, e.s.Epoch(), e.s.res.active, n.ends[1].s.Epoch(), n.ends[1].s.waiting)
			}
			n.check(e)
		}
	}
}

// listen plays a listener: a ClientHello that an established session
// does not take, from the peer's live session (which restarted and
// handshakes afresh), starts a new responder session. currentd runs it as
// a candidate that replaces the old session once it proves itself; the
// simulation knows which session is live and replaces at once, ignoring
// late ClientHellos of the peer's earlier sessions as a candidate that
// never completes would be.
func (n *simNet) listen(f flight) bool {
	r := n.ends[f.to]
	info, ok := ParseDatagram(f.d)
	if !ok || info.Type != DatagramHandshake || info.Receiver != 0 || !r.s.Established() ||
		info.Sender == r.s.PeerIndex() || info.Sender != n.ends[1-f.to].s.LocalIndex() {
		return false
	}
	if n.hide {
		return n.listenSealed(r, f, info.Sender)
	}
	cfg := n.config(r)
	cfg.Role = Responder
	s, err := New(cfg)
	n.must(err)
	n.must(s.Start(n.now))
	r.s.Close(n.now)
	r.s.Outgoing()
	n.check(r)
	r.s = s
	_ = s.HandleDatagram(n.now, f.d)
	n.check(r)
	return true
}

// check verifies the packets e received and watches its events.
func (n *simNet) check(e *simEnd) {
	n.tb.Helper()
	n.watch(e)
	from := n.ends[0]
	if e == from {
		from = n.ends[1]
	}
	for _, p := range dataPackets(e.s) {
		id := binary.BigEndian.Uint64(p)
		want, ok := from.sent[id]
		if !ok || !bytes.Equal(p, want) {
			n.tb.Fatalf("%s received a packet %s never sent", e.name, from.name)
		}
		if from.seen[id] {
			n.tb.Fatalf("%s received packet %#x twice", e.name, id)
		}
		from.seen[id] = true
		n.delivered++
	}
	for _, ev := range e.s.Events() {
		switch ev := ev.(type) {
		case Closed:
			if !errors.Is(ev.Reason, ErrLocalClose) {
				n.tb.Fatalf("seed %d: %s closed: %v", n.seed, e.name, ev.Reason)
			}
		case Established:
			if ev.Epoch > 1 {
				n.resumed++
			}
			e.epoch = ev.Epoch
		case EpochChanged:
			if ev.Epoch <= e.epoch {
				n.tb.Fatalf("%s: epoch went from %d to %d", e.name, e.epoch, ev.Epoch)
			}
			e.epoch = ev.Epoch
		}
	}
}

func (n *simNet) send(e *simEnd) {
	if !e.s.Established() {
		return
	}
	p := make([]byte, 20+n.rng.IntN(simMTU-32-20))
	id := e.tag | e.next
	e.next++
	binary.BigEndian.PutUint64(p, id)
	for i := 8; i < len(p); i++ {
		p[i] = byte(n.rng.Uint32())
	}
	n.must(e.s.SendPacket(n.now, p))
	e.sent[id] = p
}

func (n *simNet) update(e *simEnd) {
	err := e.s.Update(n.now)
	if err != nil && !errors.Is(err, ErrUpdatePending) && !errors.Is(err, ErrNotEstablished) {
		n.tb.Fatalf("%s: Update: %v", e.name, err)
	}
	if err == nil {
		n.updates++
	}
}

// restart persists the initiator's group, drops the session and resumes
// (datagram mode), or breaks the connection (stream mode).
func (n *simNet) restart() {
	if n.mode == Stream {
		n.reconnect(nil)
		return
	}
	e := n.ends[0]
	if !e.s.Established() {
		return
	}
	state, err := e.s.State()
	n.must(err)
	peerIdx := e.s.PeerIndex()
	n.crash(e)
	cfg := n.config(e)
	cfg.Role, cfg.Resume, cfg.PeerIndex = Initiator, state, peerIdx
	s, err := New(cfg)
	n.must(err)
	e.s = s
	e.epoch = 0
	n.restarts++
	n.must(s.Start(n.now))
}

// restartBoth restarts both sides at the same moment (datagram mode; in
// stream mode it breaks the connection, after which both sides restart
// anyway). Each resumes as initiator from what it persisted, at its saved
// index: both requests cross.
func (n *simNet) restartBoth() {
	n.both++
	if n.mode == Stream {
		n.reconnect(nil)
		return
	}
	var sv [2]*simSaved
	for i, e := range n.ends {
		sv[i] = n.persist(e)
	}
	for _, e := range n.ends {
		n.crash(e)
	}
	n.restarts++
	for i, e := range n.ends {
		n.resumeFrom(e, sv[i])
	}
}

// snapshot keeps a copy of one side's current state for restartStale.
func (n *simNet) snapshot() {
	e := n.ends[n.rng.IntN(2)]
	if !e.s.Established() {
		return
	}
	state, err := e.s.State()
	n.must(err)
	e.old = &simSaved{state: state, local: e.s.LocalIndex(), peer: e.s.PeerIndex()}
}

// restartStale restarts the side with a snapshot from it, as a daemon
// whose state file was put back from a backup: the peer has usually
// moved on and rejects the request.
func (n *simNet) restartStale() {
	for _, e := range n.ends {
		if e.old == nil {
			continue
		}
		n.stale++
		if n.mode == Stream {
			n.reconnect(e)
			return
		}
		n.crash(e)
		n.restarts++
		n.resumeFrom(e, e.old)
		e.old = nil
		return
	}
}

// persist is what e's state file holds now: its current group if it is
// established, else what it persisted last.
func (n *simNet) persist(e *simEnd) *simSaved {
	if e.s.Established() {
		state, err := e.s.State()
		n.must(err)
		e.saved = &simSaved{state: state, local: e.s.LocalIndex(), peer: e.s.PeerIndex()}
	}
	return e.saved
}

// crash ends e's session: nothing the old session would still send
// leaves.
func (n *simNet) crash(e *simEnd) {
	n.watch(e)
	if n.hide {
		// The process dies: the keys are on disk, the replay set and
		// the peer's hello timestamp were in memory.
		e.ring = reloadKeyring(n.tb, e.ring)
		e.helloSeen = time.Time{}
	}
	e.s.Close(n.now)
	e.s.Outgoing()
	e.s.Events()
	e.s.Packets()
}

// resumeFrom starts e as currentd starts a peer with an endpoint: as
// initiator, resuming sv if there is one.
func (n *simNet) resumeFrom(e *simEnd, sv *simSaved) {
	cfg := n.config(e)
	cfg.Role = Initiator
	if sv != nil {
		cfg.Resume, cfg.LocalIndex, cfg.PeerIndex = sv.state, sv.local, sv.peer
		if n.hide {
			// A sealed resumption comes from a fresh index: the old one
			// would link it to the session it resumes.
			cfg.LocalIndex = 0
		}
	}
	s, err := New(cfg)
	n.must(err)
	e.s = s
	e.epoch = 0
	n.must(s.Start(n.now))
}

// reconnect breaks the stream: what is in flight is lost, both sides
// persist their group if they have one (else keep what they persisted
// last) and start over on a new connection, resuming if they can; stale,
// if set, resumes from its snapshot instead.
func (n *simNet) reconnect(stale *simEnd) {
	n.q = nil
	n.lastAt = [2]time.Time{}
	for _, e := range n.ends {
		if e.s.Established() {
			state, err := e.s.State()
			n.must(err)
			e.state = state
		}
		n.crash(e)
	}
	n.restarts++
	for _, e := range []*simEnd{n.ends[1], n.ends[0]} {
		cfg := n.config(e)
		cfg.Resume = e.state
		if e == stale {
			cfg.Resume = e.old.state
			e.old = nil
		}
		s, err := New(cfg)
		n.must(err)
		e.s = s
		e.epoch = 0
		n.must(s.Start(n.now))
	}
}

// runSim plays one seed's script.
func runSim(tb testing.TB, mode Transport, seed uint64, suite mls.CipherSuiteID, ik, rk keyPair, updates, packets int, hide bool) *simNet {
	n := newSimNet(tb, mode, seed, suite, ik, rk, hide)
	type action struct {
		at time.Duration
		f  func()
	}
	var script []action
	// Long scripts spread out so that most updates find the previous
	// one finished rather than being refused with ErrUpdatePending.
	span := max(30*time.Second, time.Duration(updates)*400*time.Millisecond)
	for range packets {
		side := n.rng.IntN(2)
		script = append(script, action{time.Duration(n.rng.Int64N(int64(span))), func() { n.send(n.ends[side]) }})
	}
	for range updates {
		at := time.Duration(n.rng.Int64N(int64(span)))
		switch n.rng.IntN(3) {
		case 0, 1:
			side := n.rng.IntN(2)
			script = append(script, action{at, func() { n.update(n.ends[side]) }})
		case 2: // collision
			script = append(script, action{at, func() { n.update(n.ends[0]); n.update(n.ends[1]) }})
		}
	}
	for range 1 + n.rng.IntN(2) {
		script = append(script, action{time.Duration(n.rng.Int64N(int64(span))), n.restart})
	}
	for range n.rng.IntN(2) {
		script = append(script, action{time.Duration(n.rng.Int64N(int64(span))), n.restartBoth})
	}
	if n.rng.IntN(2) == 0 {
		at := time.Duration(n.rng.Int64N(int64(span)))
		later := at + time.Duration(n.rng.Int64N(int64(span-at)+1))
		script = append(script, action{at, n.snapshot}, action{later, n.restartStale})
	}
	if hide {
		for range n.rng.IntN(3) {
			script = append(script, action{time.Duration(n.rng.Int64N(int64(span))), n.rotate})
		}
	}
	slices.SortStableFunc(script, func(a, b action) int { return int(a.at - b.at) })
	for _, a := range script {
		n.advance(t0.Add(a.at))
		a.f()
	}
	// Heal the network and let everything settle.
	n.loss, n.dup = 0, 0
	deadline := n.now.Add(120 * time.Second)
	for n.now.Before(deadline) {
		n.advance(n.now.Add(100 * time.Millisecond))
		a, b := n.ends[0].s, n.ends[1].s
		if len(n.q) == 0 && a.Established() && b.Established() && !a.waiting && !b.waiting && a.Epoch() == b.Epoch() {
			break
		}
	}
	a, b := n.ends[0].s, n.ends[1].s
	if !a.Established() || !b.Established() || a.Epoch() != b.Epoch() || a.waiting || b.waiting {
		tb.Fatalf("seed %d: did not converge: established %v %v, epochs %d %d, waiting %v %v",
			seed, a.Established(), b.Established(), a.Epoch(), b.Epoch(), a.waiting, b.waiting)
	}
	// Packets flow both ways in the final epoch.
	for range 3 {
		n.send(n.ends[0])
		n.send(n.ends[1])
	}
	before := n.delivered
	n.advance(n.now.Add(time.Second))
	if n.delivered != before+6 {
		tb.Fatalf("seed %d: %d of 6 packets delivered after convergence", seed, n.delivered-before)
	}
	if hide {
		n.audit()
	}
	return n
}

// Flags for long soak runs, e.g.
//
//	go test -run 'TestSimulatedNetwork$' -sim.seeds=1000 -sim.updates=300 ./session/
var (
	simSeedsFlag   = flag.Int("sim.seeds", 0, "simulated network seeds per mode (0: default)")
	simUpdatesFlag = flag.Int("sim.updates", 0, "scripted updates per seed (0: default)")
	simPacketsFlag = flag.Int("sim.packets", 0, "scripted packets per seed (0: default)")
)

// simSuite: most seeds run the X25519 suite; every tenth the post-quantum
// suite, whose handshake messages need fragmentation in datagram mode and
// several plaintext records in stream mode.
func simSuite(seed uint64) mls.CipherSuiteID {
	if seed%10 == 9 {
		return testSuites[1]
	}
	return testSuites[0]
}

// TestSimulatedNetwork runs the seeds of both modes in parallel, one
// subtest per mode, sharing pre-generated signature keys.
func TestSimulatedNetwork(t *testing.T) {
	seeds, updates, packets := simSeeds, simUpdates, simPackets
	if testing.Short() {
		seeds = 20
	}
	if *simSeedsFlag > 0 {
		seeds = *simSeedsFlag
	}
	if *simUpdatesFlag > 0 {
		updates = *simUpdatesFlag
	}
	if *simPacketsFlag > 0 {
		packets = *simPacketsFlag
	}
	keys := map[mls.CipherSuiteID][2]keyPair{}
	for _, id := range testSuites {
		keys[id] = [2]keyPair{newKeys(t, id), newKeys(t, id)}
	}
	for _, mode := range []Transport{Datagram, Stream} {
		name := map[Transport]string{Datagram: "datagram", Stream: "stream"}[mode]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var delivered, restarts, both, stale, resumed, started, epochs, rotations, learned atomic.Int64
			for seed := range uint64(seeds) {
				id := simSuite(seed)
				k := keys[id]
				n := runSim(t, mode, seed, id, k[0], k[1], updates, packets, true)
				delivered.Add(int64(n.delivered))
				restarts.Add(int64(n.restarts))
				both.Add(int64(n.both))
				stale.Add(int64(n.stale))
				resumed.Add(int64(n.resumed))
				started.Add(int64(n.updates))
				epochs.Add(int64(n.ends[0].s.Epoch()))
				rotations.Add(int64(n.rotations))
				learned.Add(int64(n.learned))
			}
			t.Logf("%s: %d seeds, %d updates started, %d packets delivered, %d restarts (%d of both sides, %d from a stale state), %d resumptions, %d final epochs in all; identity hiding: %d hello key rotations, %d hello keys learned, observer clean",
				name, seeds, started.Load(), delivered.Load(), restarts.Load(), both.Load(), stale.Load(), resumed.Load(), epochs.Load(), rotations.Load(), learned.Load())
		})
	}
}

func TestSimulatedNetworkSeed(t *testing.T) {
	for _, mode := range []Transport{Datagram, Stream} {
		if simDebugSeed != 0 {
			id := simSuite(simDebugSeed)
			runSim(t, mode, simDebugSeed, id, newKeys(t, id), newKeys(t, id), simUpdates, simPackets, true)
			continue
		}
		for _, id := range testSuites {
			for _, hide := range []bool{false, true} {
				t.Run(fmt.Sprintf("%d/%#04x/hide=%v", mode, uint16(id), hide), func(t *testing.T) {
					runSim(t, mode, 12345, id, newKeys(t, id), newKeys(t, id), 200, 200, hide)
				})
			}
		}
	}
}

var simDebugSeed uint64

package tunnel

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/current-vpn/current/session"
)

// The listener's admission of sealed hellos under a restart storm
// (sealed.go, guard.go; docs/protocol.md 7.9.1): resumptions of groups
// the device knows take from the resumption budget, everything else that
// is opened from the handshake ceiling, and the per-host limits hold for
// both.

// stormHub is a device whose peer "b" has a group it knows, and the
// means to make sealed ResumptionRequests of that group.
type stormHub struct {
	t     *testing.T
	d     *Device
	ik    keyPair
	group []byte
	now   time.Time
}

func newStormHub(t *testing.T) *stormHub {
	rk, ik := newKeys(t, testSuite), newKeys(t, testSuite)
	n := startNode(t, Config{ListenPort: 0, Peers: []PeerConfig{{Name: "b", PublicKey: ik.pub, AllowedIPs: pfxs("10.0.0.2/32")}}}, rk)
	// Budgets of a fixed size, whatever the cores (before any hello
	// arrives): the storm here is one peer's, from many hosts, and must
	// fit the opened-hello routes (1024 + 4 per peer), which the
	// budgets of a machine with many cores, or the real resumption
	// budget, would overflow. The rules tested do not depend on the size.
	const ceiling = 2 * handshakeCoreRate
	n.dev.guard.global = newLimiter(ceiling, ceiling)
	n.dev.guard.resumes = newLimiter(4*ceiling, 4*ceiling)
	group, _ := establishedStreamGroup(t, ik, rk)
	h := &stormHub{t: t, d: n.dev, ik: ik, group: group, now: time.Now()}
	// The group ID is in the opened request; the device learns it from
	// saved state or the session, as here from one request opened aside.
	oh, err := h.d.hello.ring.OpenHello(h.now, h.request())
	if err != nil || !oh.Resumption || len(oh.GroupID) == 0 {
		t.Fatalf("opening a sealed resumption: %v", err)
	}
	p := h.d.peerByKey(ik.pub)
	h.d.mu.Lock()
	h.d.byGroup[string(oh.GroupID)] = p
	h.d.mu.Unlock()
	return h
}

// request is a new sealed ResumptionRequest of the group (a new commit,
// so new bytes every time), as its envelope.
func (h *stormHub) request() []byte {
	h.t.Helper()
	s, err := session.New(sealingTo(h.t, session.Config{Role: session.Initiator, Suite: testSuite, SigningKey: h.ik.priv,
		PeerPublicKey: h.d.ownPub, Transport: session.Stream, Resume: h.group}, h.d))
	if err != nil {
		h.t.Fatal(err)
	}
	if err := s.Start(h.now); err != nil {
		h.t.Fatal(err)
	}
	hs := &helloStream{r: bytes.NewReader(bytes.Join(s.Outgoing(), nil))}
	_, env, err := hs.next()
	if err != nil {
		h.t.Fatal(err)
	}
	return bytes.Clone(env)
}

// garbage is a sealed hello to the device's hello key that does not open.
func (h *stormHub) garbage() []byte {
	env := h.request()
	env[len(env)-1] ^= 0xff
	return env
}

// hostN is the n-th of many hosts, each its own for the per-host limits.
func hostN(n int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{198, 18, byte(n >> 8), byte(n)}), 4000)
}

// classify is the UDP listener's work on one reassembled hello.
func (h *stormHub) classify(at time.Time, src netip.AddrPort, env []byte) sealedVerdict {
	return h.d.classifyHello(at, src, env, 1, h.d.cfg.MaxDatagramSize)
}

func (h *stormHub) refused(r refusal) uint64 { return h.d.guard.refused[r].Load() }

// tokens is what is left in l at now.
func tokens(l *limiter, now time.Time) float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.refill(now, l.rate, l.burst)
	return l.b.tokens
}

// TestResumptionStormAdmitted: a storm of resumptions of a known group,
// one per host, is admitted at the resumption budget, well beyond the
// handshake ceiling, which it leaves full, and without cookies while the
// budget lasts; beyond the budget a request is held, and its
// retransmission goes on once the budget has a token, without another
// open, exactly once.
func TestResumptionStormAdmitted(t *testing.T) {
	h := newStormHub(t)
	g := h.d.guard
	burst := int(g.resumes.burst)
	if burst <= int(g.global.burst) {
		t.Fatalf("resumption budget %d not above the ceiling %d", burst, int(g.global.burst))
	}
	reqs := make([][]byte, burst+3)
	for i := range reqs {
		reqs[i] = h.request()
	}
	if g.underLoad(h.now, 0) {
		t.Fatal("under load before the storm")
	}
	admitted := 0
	for i, env := range reqs[:burst] {
		v := h.classify(h.now, hostN(i), env)
		if v.p == nil || v.opened == nil {
			t.Fatalf("resumption %d of %d refused: %v", i, burst, h.d.GuardStats().Refused)
		}
		admitted++
		if i == burst/2-2 && g.underLoad(h.now, 0) {
			t.Fatalf("cookies demanded after %d affordable resumptions", i+1)
		}
	}
	if left := tokens(g.global, h.now); left != g.global.burst {
		t.Fatalf("resumptions took the ceiling's tokens: %v of %v left", left, g.global.burst)
	}
	if !g.underLoad(h.now, 0) {
		t.Fatal("the resumption budget is empty and no cookies are demanded")
	}
	// Over the budget: opened once (paid by the ceiling), then held.
	over := reqs[burst:]
	for i, env := range over {
		if v := h.classify(h.now, hostN(burst+i), env); v.p != nil {
			t.Fatalf("resumption over the budget admitted")
		}
	}
	if got := h.refused(refRateResume); got != uint64(len(over)) {
		t.Fatalf("%d rate_resume refusals, want %d", got, len(over))
	}
	if left := tokens(g.global, h.now); left != g.global.burst-float64(len(over)) {
		t.Fatalf("held resumptions' opens not charged to the ceiling: %v left", left)
	}
	// A second later the budget has tokens again: the retransmission
	// goes on with the hello opened before.
	later := h.now.Add(time.Second)
	v := h.classify(later, hostN(burst), over[0])
	if v.p == nil || v.opened == nil {
		t.Fatalf("held resumption not released: %+v", v)
	}
	if v := h.classify(later, hostN(burst), over[0]); v.p == nil || v.opened != nil {
		t.Fatalf("second copy of a released resumption: %+v, want a copy for the cache", v)
	}
	if st := h.d.GuardStats(); st.Refused["hello_replay"] != 0 || st.Refused["bad_hello"] != 0 {
		t.Fatalf("a held resumption was opened again: %v", st.Refused)
	}
	// Over TCP nothing is held: a stream initiator never resends.
	tcpReq := h.request()
	exhaust := h.now.Add(2 * time.Second)
	for tokens(g.resumes, exhaust) >= 1 {
		g.resumes.allow(exhaust)
	}
	if v := h.d.classifyHello(exhaust, hostN(9000), tcpReq, 0, -1); v.p != nil {
		t.Fatal("a stream resumption over the budget admitted")
	}
	if p := h.d.opened.peerOf(sha256.Sum256(tcpReq)); p != nil {
		t.Fatal("a stream resumption over the budget was held")
	}
	t.Logf("%d resumptions admitted at once (ceiling %v)", admitted, g.global.burst)
}

// TestGarbageSealedMeetsCeiling: hellos sealed to the hello key that do
// not open, and resumptions of groups nobody has, stay at the handshake
// ceiling, however many hosts send them.
func TestGarbageSealedMeetsCeiling(t *testing.T) {
	h := newStormHub(t)
	g := h.d.guard
	ceiling := int(g.global.burst)
	for i := range ceiling + 20 {
		env := h.garbage()
		if v := h.classify(h.now, hostN(i), env); v.p != nil {
			t.Fatal("garbage admitted")
		}
	}
	if bad, global := h.refused(refBadHello), h.refused(refRateGlobal); bad != uint64(ceiling) || global != 20 {
		t.Fatalf("garbage: %d opened (bad_hello), %d refused at the ceiling; want %d and 20", bad, global, ceiling)
	}
	if tokens(g.resumes, h.now) != g.resumes.burst {
		t.Fatal("garbage took resumption tokens")
	}
	// With the ceiling empty, a real resumption is refused before any
	// open too: the open has to be paid before anyone knows what it is.
	if v := h.classify(h.now, hostN(ceiling+100), h.request()); v.p != nil {
		t.Fatal("a resumption passed an empty ceiling")
	}

	// Unknown groups: another device's requests open but name nobody.
	other := newStormHub(t)
	other.d.mu.Lock()
	clear(other.d.byGroup)
	other.d.mu.Unlock()
	for i := range 5 {
		other.classify(other.now, hostN(i), other.request())
	}
	if got := other.refused(refUnknownPeer); got != 5 {
		t.Fatalf("%d unknown-group resumptions refused, want 5", got)
	}
	if left := tokens(other.d.guard.global, other.now); left != other.d.guard.global.burst-5 {
		t.Fatalf("unknown-group resumptions not charged to the ceiling: %v left", left)
	}
}

// TestReplayedRequestAdmittedOnce: copies of one captured request, from
// any number of hosts, take no budget while its route lasts (its peer
// answers them from its cache); after that the keyring refuses them as
// replays before any open, and the ceiling gets back the token it lent:
// a replay costs its host's token only.
func TestReplayedRequestAdmittedOnce(t *testing.T) {
	h := newStormHub(t)
	g := h.d.guard
	env := h.request()
	if v := h.classify(h.now, hostN(0), env); v.opened == nil {
		t.Fatal("the request was not admitted")
	}
	for i := 1; i <= 50; i++ {
		v := h.classify(h.now, hostN(i), env)
		if v.p == nil || v.opened != nil {
			t.Fatalf("copy %d: %+v, want a copy for the peer's cache", i, v)
		}
	}
	if left := tokens(g.resumes, h.now); left != g.resumes.burst-1 {
		t.Fatalf("copies took resumption tokens: %v of %v left", left, g.resumes.burst)
	}
	if left := tokens(g.global, h.now); left != g.global.burst {
		t.Fatalf("copies took the ceiling's tokens: %v left", left)
	}
	h.d.opened.drop(h.now.Add(time.Hour), nil)
	replays := 2*int(g.global.burst) + 10
	for i := range replays {
		if v := h.classify(h.now, hostN(100+i), env); v.p != nil {
			t.Fatal("a replay after the route expired was admitted")
		}
	}
	if r, gl := h.refused(refHelloReplay), h.refused(refRateGlobal); r != uint64(replays) || gl != 0 {
		t.Fatalf("replays: %d refused by the keyring, %d at the ceiling; want %d and 0", r, gl, replays)
	}
	if left := tokens(g.global, h.now); left != g.global.burst {
		t.Fatalf("replays kept the ceiling's tokens: %v of %v left", left, g.global.burst)
	}
	// The host's limit still holds for replays from one host.
	for range 2 * handshakeHostBurst {
		h.classify(h.now, hostN(100), env)
	}
	if h.refused(refRateHost) == 0 {
		t.Fatal("replays from one host passed its limit")
	}
}

// TestCopiesKeepTheirRoute: a peer that keeps retransmitting a request
// the device opened keeps its route past the handshake timeout (the
// owner may wait longer than that for a resumption slot), for at most
// maxRouteAge; a route nobody uses expires after the timeout.
func TestCopiesKeepTheirRoute(t *testing.T) {
	h := newStormHub(t)
	life := h.d.opened.life
	kept, idle := h.request(), h.request()
	for i, env := range [][]byte{kept, idle} {
		if v := h.classify(h.now, hostN(i), env); v.opened == nil {
			t.Fatalf("request %d not admitted", i)
		}
	}
	at := h.now
	for at.Sub(h.now) < 3*life {
		at = at.Add(life / 2)
		h.d.opened.expire(at)
		if v := h.classify(at, hostN(0), kept); v.p == nil || v.opened != nil {
			t.Fatalf("copy %v after the open: %+v, want a copy routed to the peer", at.Sub(h.now), v)
		}
	}
	if p := h.d.opened.peerOf(sha256.Sum256(idle)); p != nil {
		t.Fatal("a route nobody used outlived the handshake timeout")
	}
	// Past maxRouteAge copies no longer refresh it.
	for at.Sub(h.now) < maxRouteAge+life {
		at = at.Add(life / 2)
		h.d.opened.expire(at)
		h.classify(at, hostN(0), kept)
	}
	if p := h.d.opened.peerOf(sha256.Sum256(kept)); p != nil {
		t.Fatalf("a route lived %v, past maxRouteAge %v", at.Sub(h.now), maxRouteAge)
	}
}

// TestResumptionsPerHostLimited: one host gets its burst of resumptions
// and copies, not the device's budget.
func TestResumptionsPerHostLimited(t *testing.T) {
	h := newStormHub(t)
	src := hostN(1)
	admitted := 0
	var first []byte
	for range handshakeHostBurst + 8 {
		env := h.request()
		if first == nil {
			first = env
		}
		if v := h.classify(h.now, src, env); v.opened != nil {
			admitted++
		}
	}
	if admitted != handshakeHostBurst || h.refused(refRateHost) != 8 {
		t.Fatalf("one host: %d admitted, %d refused for its rate; want %d and 8", admitted, h.refused(refRateHost), handshakeHostBurst)
	}
	// Its copies too; another port of the same address is the same host.
	other := netip.AddrPortFrom(src.Addr(), 9)
	if v := h.classify(h.now, other, first); v.p != nil {
		t.Fatal("a copy passed an exhausted host limit")
	}
	// An IPv6 host is its /64.
	for i := range handshakeHostBurst + 1 {
		a := netip.MustParseAddr(fmt.Sprintf("2001:db8:0:1::%x", i+1))
		h.classify(h.now, netip.AddrPortFrom(a, 1), h.request())
	}
	if got := h.refused(refRateHost); got != 10 {
		t.Fatalf("%d host refusals after a /64's burst, want 10", got)
	}
}

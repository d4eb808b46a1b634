package tunnel

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/current-vpn/current/session"
	"github.com/current-vpn/current/session/record"
)

// What the control socket (package ctl, served by currentd) reads of a
// running device. The owner goroutine publishes a snapshot of its state
// after every event it handles (publishStatus, called at the top of run's
// loop), so readers never touch owner state; the counters are atomics.

// SessionState is where a peer's session stands; the values are those of
// ctl.SessionState.
type SessionState string

// Session states.
const (
	StateIdle        SessionState = "idle"
	StateConnecting  SessionState = "connecting"
	StateHandshaking SessionState = "handshaking"
	StateEstablished SessionState = "established"
)

// PeerStatus is a snapshot of one peer.
type PeerStatus struct {
	Name      string
	PublicKey []byte
	// Configuration last given by New or Reconfigure.
	Endpoint            string
	AllowedIPs          []netip.Prefix
	Transport           Transport
	PersistentKeepalive time.Duration

	State SessionState
	// RemoteAddress is the current connection's remote address, "" if none.
	RemoteAddress string
	// Epoch is the current session's epoch, 0 without one.
	Epoch uint64
	// LastEpochChange and LastHandshake are zero if they never happened.
	LastEpochChange, LastHandshake time.Time
	// Epochs and Handshakes count epoch changes and established sessions
	// since the peer was added (Rekey waits on them).
	Epochs, Handshakes uint64

	RxBytes, TxBytes, RxPackets, TxPackets uint64
	DropQueueFull, DropSource              uint64
	// ActiveTransport is what the current connection runs over, "udp" or
	// "tcp" ("" without one), and TransportReason why (the Reason
	// constants). FallbackSince is when a transport=auto peer fell back
	// to TCP (zero unless it is on TCP for that reason); meanwhile
	// UDPProbing says a UDP probe is under way, and NextUDPProbe is when
	// the next one starts (zero if none is scheduled).
	ActiveTransport string
	TransportReason string
	FallbackSince   time.Time
	UDPProbing      bool
	NextUDPProbe    time.Time
	// DropReplay counts protected datagrams the sessions' anti-replay
	// windows rejected (record.ErrReplay or record.ErrTooOld), over every
	// session the peer had. The window is checked before the AEAD, as in
	// WireGuard, so forged datagrams with a used sequence number count
	// too.
	DropReplay uint64
	// DropUnknownEpoch counts protected datagrams of an epoch whose keys
	// the session did not hold (record.ErrUnknownEpoch: too old, past the
	// grace period, or not installed yet), and DropBadMAC those the AEAD
	// rejected (record.ErrBadRecordMAC: forged, corrupted or keyed for
	// someone else).
	DropUnknownEpoch, DropBadMAC uint64

	// Fallbacks counts switches from UDP to TCP (transport auto).
	Fallbacks uint64
	Handshake HandshakeOutcomes
}

// Why a peer's connection runs over its transport (PeerStatus).
const (
	// ReasonConfigured: the configured transport (auto's first choice,
	// UDP, included).
	ReasonConfigured = "configured"
	// ReasonFallback: transport auto, on TCP because UDP got no answer.
	ReasonFallback = "fallback"
	// ReasonPeer: the peer chose it; it reached us over that transport.
	ReasonPeer = "peer"
)

// peerControl is the owner's published snapshot, the bookkeeping that
// decides when to publish a new one, and the times of the last handshake
// and epoch change.
type peerControl struct {
	snap atomic.Pointer[ownerSnapshot]
	// The times (Unix nanoseconds, 0 for never) are stored by the owner
	// before it moves the epoch and the counters, so a reader that loads
	// the counters first never sees a new epoch with an old time. They
	// cannot wait for the next snapshot: Rekey returns as soon as the
	// counter moves, and a show right after it must agree.
	lastEpochChange, lastHandshake atomic.Int64
	// owner only
	last ownerKey
}

// ownerSnapshot is the part of PeerStatus only the owner knows.
type ownerSnapshot struct {
	state  SessionState
	remote string
	transportStatus
}

// transportStatus is the owner's part of PeerStatus's transport fields.
type transportStatus struct {
	active, reason       string
	fallbackSince, probe time.Time
	probing              bool
}

// ownerKey is what publishStatus compares to see a change cheaply.
type ownerKey struct {
	state     SessionState
	conn      carrier
	hasRemote bool
	roams     uint64
	transportStatus
}

// transportStatus describes the transport the peer is on, and why.
func (p *peer) transportStatus() transportStatus {
	var t transportStatus
	if p.probeWanted() {
		t.fallbackSince = p.probe.since
		t.probing = p.probing() || p.probe.resolving
		if !t.probing {
			t.probe = p.probe.at
		}
	}
	if p.conn == nil {
		return t
	}
	t.active = transportName(p.conn)
	wantUDP := p.cfg.Transport != TransportTCP
	switch {
	case p.cfg.Endpoint == "":
		t.reason = ReasonPeer // we never dial: the peer picks
	case t.active == "tcp" && p.cfg.Transport == TransportAuto && p.useTCP:
		t.reason = ReasonFallback
	case p.conn.datagram() == wantUDP:
		t.reason = ReasonConfigured
	default:
		t.reason = ReasonPeer
	}
	return t
}

// noteHandshake records, before the counters move, that a session was
// established at now.
func (c *peerControl) noteHandshake(now time.Time) {
	c.lastHandshake.Store(now.UnixNano())
	c.lastEpochChange.Store(now.UnixNano())
}

// noteEpochChange records, before the counters move, that the epoch
// changed at now.
func (c *peerControl) noteEpochChange(now time.Time) {
	c.lastEpochChange.Store(now.UnixNano())
}

// unixNanoTime is the inverse of UnixNano with 0 for the zero Time.
func unixNanoTime(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// publishStatus runs in the owner goroutine after every event. It only
// allocates when something visible changed.
func (p *peer) publishStatus() {
	k := ownerKey{
		conn:            p.conn,
		roams:           p.stats.roams.Load(),
		transportStatus: p.transportStatus(),
	}
	switch {
	case p.conn != nil && p.sess != nil && p.sess.Established():
		k.state = StateEstablished
	case p.conn != nil:
		k.state = StateHandshaking
	case p.dialing:
		k.state = StateConnecting
	default:
		k.state = StateIdle
	}
	if dc, ok := p.conn.(*dgramCarrier); ok {
		k.hasRemote = dc.ep != nil
	} else {
		k.hasRemote = p.conn != nil
	}
	old := p.ctl.snap.Load()
	if old != nil && k == p.ctl.last {
		return
	}
	s := &ownerSnapshot{state: k.state, transportStatus: k.transportStatus}
	if p.conn != nil {
		s.remote = p.conn.remote()
	}
	p.ctl.last = k
	p.ctl.snap.Store(s)
}

// transportName names the transport of a connection, as logs and
// metrics show it.
func transportName(c carrier) string {
	if c.datagram() {
		return "udp"
	}
	return "tcp"
}

// PeerStatus returns a snapshot of every peer, in the order of the
// configuration last given to New or Reconfigure.
func (d *Device) PeerStatus() []PeerStatus {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]PeerStatus, 0, len(d.cfg.Peers))
	for _, pc := range d.cfg.Peers {
		p := d.byKey[string(pc.PublicKey)]
		if p == nil {
			continue
		}
		st := PeerStatus{
			Name:                pc.Name,
			PublicKey:           bytes.Clone(pc.PublicKey),
			Endpoint:            pc.Endpoint,
			AllowedIPs:          slices.Clone(pc.AllowedIPs),
			Transport:           pc.Transport,
			PersistentKeepalive: pc.PersistentKeepalive,
			State:               StateIdle,
			Epochs:              p.stats.epochs.Load(),
			Handshakes:          p.stats.handshakes.Load(),
			RxBytes:             p.stats.rxBytes.Load(),
			TxBytes:             p.stats.txBytes.Load(),
			RxPackets:           p.stats.rxPackets.Load(),
			TxPackets:           p.stats.txPackets.Load(),
			DropQueueFull:       p.stats.dropQueueFull.Load(),
			DropSource:          p.stats.dropSource.Load(),
			DropReplay:          p.stats.dropReplay.Load(),
			DropUnknownEpoch:    p.stats.dropUnknownEpoch.Load(),
			DropBadMAC:          p.stats.dropBadMAC.Load(),
			Fallbacks:           p.stats.fallbacks.Load(),
			Handshake:           p.stats.hs.snapshot(),
		}
		epoch := p.epoch.Load()
		// Loaded after the counters and the epoch: see peerControl.
		st.LastEpochChange = unixNanoTime(p.ctl.lastEpochChange.Load())
		st.LastHandshake = unixNanoTime(p.ctl.lastHandshake.Load())
		if s := p.ctl.snap.Load(); s != nil {
			st.State = s.state
			st.RemoteAddress = s.remote
			st.ActiveTransport, st.TransportReason = s.active, s.reason
			st.FallbackSince, st.UDPProbing, st.NextUDPProbe = s.fallbackSince, s.probing, s.probe
		}
		if st.State == StateEstablished {
			st.Epoch = epoch
		}
		out = append(out, st)
	}
	return out
}

// RekeyPeer asks the session of the peer with public key pub to start an
// epoch update; it does nothing if the session is not established.
func (d *Device) RekeyPeer(pub []byte) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	p := d.byKey[string(pub)]
	if p == nil {
		return fmt.Errorf("no peer with this key")
	}
	p.requestRekey()
	return nil
}

// rekeyPolicy is the sessions' update schedule (session.Config's
// UpdateInterval and UpdateBytes).
type rekeyPolicy struct {
	interval time.Duration
	bytes    int64
}

// SetRekeyPolicy replaces Config.RekeyInterval and RekeyBytes (zero means
// the session's default, negative disables) for every session: those
// running now, through their owners (session.SetUpdatePolicy: the current
// epoch keeps its age and its byte count), and those created later, of
// existing peers and of peers added afterwards.
func (d *Device) SetRekeyPolicy(interval time.Duration, bytes int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.policy.Store(&rekeyPolicy{interval: interval, bytes: bytes})
	for _, p := range d.peers {
		select {
		case p.policy <- struct{}{}:
		default: // already pending; the owner reads the latest
		}
	}
}

// RekeyPolicy returns the policy in force, as given to New or
// SetRekeyPolicy.
func (d *Device) RekeyPolicy() (interval time.Duration, bytes int64) {
	pol := d.policy.Load()
	return pol.interval, pol.bytes
}

// applyPolicy gives the device's policy to the peer's sessions (owner).
func (p *peer) applyPolicy() {
	pol := p.dev.policy.Load()
	if s := p.cand.s; s != nil {
		if err := s.SetUpdatePolicy(p.now(), pol.interval, pol.bytes); err != nil {
			p.dropCandidate()
		}
	}
	if p.sess == nil {
		return
	}
	if err := p.sess.SetUpdatePolicy(p.now(), pol.interval, pol.bytes); err != nil {
		if !errors.Is(err, session.ErrClosed) {
			p.sessionFailed(err)
		}
		return
	}
	p.process() // an update the byte threshold started
}

// countDrop counts a datagram a session dropped, by reason.
func (p *peer) countDrop(err error) {
	switch {
	case errors.Is(err, record.ErrReplay) || errors.Is(err, record.ErrTooOld):
		p.stats.dropReplay.Add(1)
	case errors.Is(err, record.ErrUnknownEpoch):
		p.stats.dropUnknownEpoch.Add(1)
	case errors.Is(err, record.ErrBadRecordMAC):
		p.stats.dropBadMAC.Add(1)
	}
}

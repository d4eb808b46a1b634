package tunnel

import "sync/atomic"

// deviceStats counts what the device drops before any peer is involved.
type deviceStats struct {
	dropNoPeer    atomic.Uint64 // outbound destination in nobody's allowed IPs
	dropInvalid   atomic.Uint64 // not an IPv4/IPv6 packet
	tunReadErrors atomic.Uint64
	cookiesSent   atomic.Uint64 // CookieChallenges sent under load
	// handshakeTimes: every peer's handshake durations (handshakes.go).
	handshakeTimes durationHistogram
	// The refusals of unauthenticated input are the guard's (guard.go).
}

// peerStats are one peer's counters; the owner writes, anyone reads.
type peerStats struct {
	txPackets, rxPackets atomic.Uint64
	txBytes, rxBytes     atomic.Uint64
	dropQueueFull        atomic.Uint64 // outbound queue or connection full
	dropSource           atomic.Uint64 // inbound source outside the peer's allowed IPs
	dropReplay           atomic.Uint64 // records the sessions' replay windows rejected
	dropUnknownEpoch     atomic.Uint64 // records of an epoch whose keys the session does not hold
	dropBadMAC           atomic.Uint64 // records that failed authentication
	handshakes, epochs   atomic.Uint64
	connsReplaced, dials atomic.Uint64
	sessionErrors        atomic.Uint64
	dropSendError        atomic.Uint64 // UDP send failed
	roams, fallbacks     atomic.Uint64
	udpProbes            atomic.Uint64 // UDP probes started while fallen back
	udpReturns           atomic.Uint64 // probes that brought the peer back to UDP
	keepalivesTx         atomic.Uint64
	keepalivesRx         atomic.Uint64
	resumed              atomic.Uint64
	silentSessions       atomic.Uint64 // rescues started by liveness.go
	hs                   handshakeCounters
}

// Stats is a snapshot of the counters, for logs, tests and later
// currentctl.
type Stats struct {
	DropNoPeer, DropInvalid, UnknownPeer, BadHello uint64
	BadDatagram, UnknownIndex, CookiesSent         uint64
	Peers                                          map[string]PeerStats
}

// PeerStats is one peer's part of Stats.
type PeerStats struct {
	TxPackets, RxPackets, TxBytes, RxBytes uint64
	DropQueueFull, DropSource, DropReplay  uint64
	DropUnknownEpoch, DropBadMAC           uint64
	Handshakes, Epochs, Dials              uint64
	Epoch                                  uint64
	Established                            bool
	Roams, Fallbacks, Resumed              uint64
	UDPProbes, UDPReturns                  uint64
	KeepalivesTx, KeepalivesRx             uint64
	// SilentSessions counts rescue handshakes started because the peer
	// answered nothing to our traffic (liveness.go).
	SilentSessions uint64
}

// Drops returns the device's own drop counters: outbound packets to no
// peer's allowed IPs, and input that is neither IPv4 nor IPv6. Unlike
// Stats it visits no peer, for status snapshots of large hubs.
func (d *Device) Drops() (noPeer, invalid uint64) {
	return d.stats.dropNoPeer.Load(), d.stats.dropInvalid.Load()
}

// Stats returns the current counters.
func (d *Device) Stats() Stats {
	s := Stats{
		DropNoPeer:   d.stats.dropNoPeer.Load(),
		DropInvalid:  d.stats.dropInvalid.Load(),
		UnknownPeer:  d.guard.refused[refUnknownPeer].Load(),
		BadHello:     d.guard.refused[refBadHello].Load(),
		BadDatagram:  d.guard.refused[refBadDatagram].Load(),
		UnknownIndex: d.guard.refused[refUnknownIndex].Load(),
		CookiesSent:  d.stats.cookiesSent.Load(),
		Peers:        map[string]PeerStats{},
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.peers {
		s.Peers[p.cfg.Name] = PeerStats{
			TxPackets:        p.stats.txPackets.Load(),
			RxPackets:        p.stats.rxPackets.Load(),
			TxBytes:          p.stats.txBytes.Load(),
			RxBytes:          p.stats.rxBytes.Load(),
			DropQueueFull:    p.stats.dropQueueFull.Load(),
			DropSource:       p.stats.dropSource.Load(),
			DropReplay:       p.stats.dropReplay.Load(),
			DropUnknownEpoch: p.stats.dropUnknownEpoch.Load(),
			DropBadMAC:       p.stats.dropBadMAC.Load(),
			Handshakes:       p.stats.handshakes.Load(),
			Epochs:           p.stats.epochs.Load(),
			Dials:            p.stats.dials.Load(),
			Epoch:            p.epoch.Load(),
			Established:      p.established.Load(),
			Roams:            p.stats.roams.Load(),
			Fallbacks:        p.stats.fallbacks.Load(),
			UDPProbes:        p.stats.udpProbes.Load(),
			UDPReturns:       p.stats.udpReturns.Load(),
			Resumed:          p.stats.resumed.Load(),
			KeepalivesTx:     p.stats.keepalivesTx.Load(),
			KeepalivesRx:     p.stats.keepalivesRx.Load(),
			SilentSessions:   p.stats.silentSessions.Load(),
		}
	}
	return s
}

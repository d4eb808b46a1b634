package tunnel

import (
	"crypto/sha256"

	"github.com/current-vpn/current/session"
)

// The owner's gate for ClientHellos that reached this peer. The listener
// already limited them per host and device-wide; here the question is
// whether a hello is new. A KeyPackage is single-use (RFC 9420 section
// 10) and an initiator makes a fresh one for every attempt, so a hello
// whose bytes we answered before is a replay, unless it is a
// retransmission to the session (or candidate) that answered it, which
// replies from its cache without new work. A replay is refused before any
// asymmetric operation. New hellos then take a token of the peer's own
// bucket, which bounds the handshake work a flood can put on the goroutine
// that carries this peer's traffic.

// helloLogLen is how many answered hellos a peer remembers: an old capture
// replayed after that many newer handshakes costs one handshake (and a
// token of the peer's bucket).
const helloLogLen = 16

type helloLog struct {
	hashes [helloLogLen][32]byte
	n      int // entries used, up to helloLogLen
	next   int
}

func (l *helloLog) seen(h [32]byte) bool {
	for i := range l.n {
		if l.hashes[i] == h {
			return true
		}
	}
	return false
}

func (l *helloLog) add(h [32]byte) {
	l.hashes[l.next] = h
	l.next = (l.next + 1) % helloLogLen
	l.n = min(l.n+1, helloLogLen)
}

// helloVerdict is what the owner does with a ClientHello.
type helloVerdict uint8

const (
	helloRefused    helloVerdict = iota // replay or over the peer's rate
	helloRetransmit                     // for the session or candidate that answered it
	helloNew                            // start responder work
)

// gateHello classifies a ClientHello with hash h. A new hello is recorded
// and counted as a responder handshake.
func (p *peer) gateHello(h [32]byte) helloVerdict {
	if h == p.sessHello && p.sess != nil {
		return helloRetransmit
	}
	if h == p.cand.hello && p.cand.s != nil {
		return helloRetransmit
	}
	now := p.now()
	g := p.dev.guard
	if p.hellos.seen(h) {
		g.refuse(now, refHelloReplay, "")
		return helloRefused
	}
	if !p.helloBucket.take(now, handshakePeerRate, handshakePeerBurst) {
		g.refuse(now, refRatePeer, "")
		return helloRefused
	}
	p.hellos.add(h)
	g.responded.Add(1)
	return helloNew
}

// datagramHelloHash identifies a reassembled ClientHello by its envelope,
// whatever the fragmentation; the zero hash if frags do not make one.
func datagramHelloHash(frags [][]byte) [32]byte {
	if len(frags) == 1 {
		if f, ok := session.ParseHandshakeFragment(frags[0]); ok && f.Offset == 0 && len(f.Data) == f.Total {
			return sha256.Sum256(f.Data)
		}
	}
	part := helloPartial{frags: map[int][]byte{}}
	for _, b := range frags {
		f, ok := session.ParseHandshakeFragment(b)
		if !ok {
			return [32]byte{}
		}
		part.total = f.Total
		part.frags[f.Offset] = f.Data
	}
	env := part.envelope()
	if env == nil {
		return [32]byte{}
	}
	return sha256.Sum256(env)
}

package main

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/current-vpn/current/session"
	"github.com/current-vpn/current/session/mls"
	"github.com/current-vpn/current/tunnel"
)

// The remote side of the established figure: for every peer the DUT has
// configured, one initiator session.Session in datagram mode, all driven
// by one goroutine over loopback UDP. The DUT is the responder, as for a
// peer without an endpoint that dials us.
//
// The DUT limits every source host to a burst of 32 hellos and then 10
// per second. From one address, 10,000 handshakes would take over half an
// hour of waiting on the limiter. So a socket carries only perSource
// handshakes and is closed when they are done; the next ones get a fresh
// socket on a fresh loopback address (a fresh bucket). Real peers come
// from as many hosts as there are peers, so the DUT keeps one rate-limiter
// entry per perSource peers here, fewer than it would in production. The
// DUT hides identities, so the remotes seal their hellos.
const (
	// window is how many handshakes are in flight at once.
	window = 256
	// perSource is how many handshakes share one source socket: with a
	// cookie round and a retransmission each they stay within the burst.
	perSource = 4
	// establishTimeout bounds the whole run.
	establishTimeout = 10 * time.Minute
	// retransmitMin is the initiators' first ClientHello retransmission:
	// longer than the default 500 ms, because a busy 2-core machine can
	// take that long to answer a window of hellos, and every spurious
	// retransmission costs the source tokens.
	retransmitMin = 2 * time.Second
)

// source is one local UDP socket and the handshakes using it.
type source struct {
	c *net.UDPConn
	// started counts the handshakes put on c, left those not yet done.
	started, left int
}

// remote is one fake peer: an initiator session and its socket.
type remote struct {
	s   *session.Session
	src *source
}

// driver owns every remote; only its goroutine touches them. One reader
// goroutine per socket only passes datagrams to in.
type driver struct {
	dst    *net.UDPAddr
	suite  mls.CipherSuiteID
	dutPub []byte
	// helloKey is the DUT's hello key once a remote learned it: the DUT
	// hides identities and refuses hellos in the clear, so the first
	// remotes fetch it and the others seal with it at once, as a peer
	// that cached it does.
	helloKey []byte
	in       chan []byte
	quit     chan struct{}
	readers  sync.WaitGroup
	live     map[uint32]*remote // by local (receiver) index
	src      *source            // where the next handshake goes
	// counters for the report
	sources, timersFired int
}

// establishAll completes a handshake with d for every private key in
// privs (d's peers, in order) and returns once d reports every one of its
// peers established. Every session and socket is gone when it returns.
func establishAll(d *tunnel.Device, suite mls.CipherSuiteID, privs [][]byte) (sources, timersFired int, err error) {
	dr := &driver{
		dst:    &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: d.UDPPort()},
		suite:  suite,
		dutPub: d.PublicKey(),
		in:     make(chan []byte, 4*window),
		quit:   make(chan struct{}),
		live:   map[uint32]*remote{},
	}
	defer dr.stop()
	if err := dr.run(privs); err != nil {
		return dr.sources, dr.timersFired, err
	}
	return dr.sources, dr.timersFired, waitEstablished(d, len(privs))
}

// run keeps window handshakes in flight until all are done. Indexes are
// 1..N, so a reply's receiver index names its session directly.
func (dr *driver) run(privs [][]byte) error {
	giveUp := time.Now().Add(establishTimeout)
	next, done := 0, 0
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for done < len(privs) {
		for len(dr.live) < window && next < len(privs) {
			if err := dr.start(uint32(next+1), privs[next]); err != nil {
				return err
			}
			next++
		}
		if time.Now().After(giveUp) {
			return fmt.Errorf("%d of %d handshakes done after %v", done, len(privs), establishTimeout)
		}
		timer.Reset(dr.untilTimeout())
		select {
		case b := <-dr.in:
			n, err := dr.receive(b)
			if err != nil {
				return err
			}
			done += n
		case <-timer.C:
			if err := dr.timeouts(); err != nil {
				return err
			}
		}
	}
	return nil
}

// start begins the handshake of the remote with index idx and key priv.
func (dr *driver) start(idx uint32, priv []byte) error {
	src, err := dr.source()
	if err != nil {
		return err
	}
	s, err := session.New(session.Config{
		Role: session.Initiator, Transport: session.Datagram,
		Suite: dr.suite, SigningKey: priv, PeerPublicKey: dr.dutPub,
		LocalIndex:    idx,
		RetransmitMin: retransmitMin,
		// Nothing but the handshake: no update may start on either side
		// before the measurement.
		UpdateInterval: -1, UpdateBytes: -1,
		HideIdentity: true, PeerHelloKey: dr.helloKey,
	})
	if err != nil {
		return err
	}
	now := time.Now()
	if err := s.Start(now); err != nil {
		return err
	}
	r := &remote{s: s, src: src}
	src.started++
	src.left++
	dr.live[idx] = r
	return dr.flush(r)
}

// source returns the socket for the next handshake, opening a new one
// when the current one has carried perSource.
func (dr *driver) source() (*source, error) {
	if dr.src != nil && dr.src.started < perSource {
		return dr.src, nil
	}
	if dr.src != nil && dr.src.left == 0 {
		dr.src.c.Close()
	}
	// Each socket has its own loopback address (all of 127/8 is local):
	// the DUT limits hellos per host, as it would 10,000 laptops.
	n := dr.sources + 1
	laddr := &net.UDPAddr{IP: net.IPv4(127, byte(1+n>>16), byte(n>>8), byte(n))}
	c, err := net.DialUDP("udp", laddr, dr.dst)
	if err != nil {
		return nil, err
	}
	dr.src = &source{c: c}
	dr.sources++
	dr.readers.Add(1)
	go dr.read(c)
	return dr.src, nil
}

// read passes every datagram c receives to the driver.
func (dr *driver) read(c *net.UDPConn) {
	defer dr.readers.Done()
	for {
		b := make([]byte, 2048)
		n, err := c.Read(b)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue // e.g. ECONNREFUSED from an ICMP error
		}
		select {
		case dr.in <- b[:n]:
		case <-dr.quit:
			return
		}
	}
}

// receive hands one datagram to its session and returns 1 if that
// completed the handshake. Datagrams for finished or unknown sessions
// (the DUT's first keepalive after the handshake) are ignored.
func (dr *driver) receive(b []byte) (int, error) {
	info, ok := session.ParseDatagram(b)
	if !ok {
		return 0, nil
	}
	r := dr.live[info.Receiver]
	if r == nil {
		return 0, nil
	}
	err := r.s.HandleDatagram(time.Now(), b)
	if err != nil && !errors.Is(err, session.ErrDropped) {
		return 0, fmt.Errorf("initiator %d: %w", info.Receiver, err)
	}
	if err := dr.flush(r); err != nil {
		return 0, err
	}
	if dr.helloKey == nil {
		dr.helloKey = r.s.PeerHelloKey()
	}
	if !r.s.Established() {
		return 0, nil
	}
	dr.finish(info.Receiver, r)
	return 1, nil
}

// finish drops an established remote, and its socket once no handshake
// uses it any more (unless new ones are still to be put on it).
func (dr *driver) finish(idx uint32, r *remote) {
	delete(dr.live, idx)
	r.src.left--
	if r.src.left == 0 && r.src != dr.src {
		r.src.c.Close()
	}
}

// flush sends what r's session has queued.
func (dr *driver) flush(r *remote) error {
	for _, b := range r.s.Outgoing() {
		if _, err := r.src.c.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// untilTimeout is how long until the earliest session timer.
func (dr *driver) untilTimeout() time.Duration {
	var first time.Time
	for _, r := range dr.live {
		if t := r.s.NextTimeout(); !t.IsZero() && (first.IsZero() || t.Before(first)) {
			first = t
		}
	}
	if first.IsZero() {
		return time.Second
	}
	return max(time.Until(first), time.Millisecond)
}

// timeouts fires the due timers (ClientHello retransmissions, mostly).
func (dr *driver) timeouts() error {
	now := time.Now()
	for idx, r := range dr.live {
		if t := r.s.NextTimeout(); t.IsZero() || now.Before(t) {
			continue
		}
		if err := r.s.HandleTimeout(now); err != nil {
			return fmt.Errorf("initiator %d: %w", idx, err)
		}
		dr.timersFired++
		if err := dr.flush(r); err != nil {
			return err
		}
	}
	return nil
}

// stop closes every socket and waits for the readers, so that nothing of
// the remote side is left in the heap or on a stack when we measure.
func (dr *driver) stop() {
	close(dr.quit)
	for _, r := range dr.live {
		r.src.c.Close()
	}
	if dr.src != nil {
		dr.src.c.Close()
	}
	dr.readers.Wait()
	dr.live = nil
}

// waitEstablished waits until the DUT itself reports n established peers:
// its responder sessions are established before they send the ServerHello,
// but each owner publishes its status only after handling the hello.
func waitEstablished(d *tunnel.Device, n int) error {
	var est int
	for range 100 {
		est = 0
		for _, st := range d.PeerStatus() {
			if st.State == tunnel.StateEstablished && st.Handshakes == 1 {
				est++
			}
		}
		if est == n {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("the device reports %d of %d peers established (with exactly one handshake)", est, n)
}

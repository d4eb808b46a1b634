package tunnel

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/current-vpn/current/routing"
	"github.com/current-vpn/current/session/mls"
)

// Device is a running tunnel: one TUN, one listener and the peers.
type Device struct {
	cfg    Config
	log    *slog.Logger
	ownPub []byte
	tun    TUN
	tunW   tunWriter
	net    netConfig

	// mu guards the peer set, which Reconfigure changes while the
	// accepter looks peers up, and the link's routes; each peer's own
	// state belongs to its owner goroutine.
	mu    sync.Mutex
	peers []*peer
	byKey map[string]*peer
	// table is the cryptokey routing table; routing.Table is lock-free
	// for readers, so the TUN reader and every owner share it.
	table routing.Table[*peer]
	ln    net.Listener
	udp   udpState
	// dialer and resolver mark their sockets with cfg.Fwmark.
	dialer   net.Dialer
	resolver *net.Resolver
	// helloSlots counts connections the accepter has not identified yet.
	helloSlots chan struct{}
	// guard budgets and counts what strangers make us hold and do.
	guard *guard
	// hello holds the hello keys every session opens sealed hellos
	// with (hellokeys.go); byGroup maps the MLS group IDs of the peers'
	// sessions to them, for sealed resumptions (sealed.go). Both under
	// mu, hello's fields aside, which only the sweeper changes.
	hello   *helloKeys
	byGroup map[string]*peer
	opened  openedHellos
	// helloQ holds the new sealed hellos the UDP readers leave to the
	// hello workers (helloworkers.go).
	helloQ helloQueue
	stats  deviceStats
	ctx    context.Context
	cancel context.CancelFunc
	// wg counts every goroutine the device started, so Close can promise
	// that none outlives it.
	wg      sync.WaitGroup
	closing atomic.Bool
	closed  sync.Once
	// clock counts the time the machine was suspended (clock.go).
	clock func() time.Time
	// policy is the sessions' update schedule, cfg's until
	// SetRekeyPolicy; owners read it whenever they create a session.
	policy atomic.Pointer[rekeyPolicy]
	// writers run the system calls of the data path (writers.go).
	writers    writers
	nextWriter atomic.Uint32
	crypto     cryptoPool
	// owners counts the peers' owner goroutines, the crypto pool's only
	// users, including those of peers removed since.
	owners sync.WaitGroup
	// saver writes the peers' state files (saver.go).
	saver stateSaver

	// buf is the packet buffer pool and its budget (bufcap.go).
	buf bufState
	// slotEpoch counts reclaim intervals, for the readers' slots (readers.go).
	slotEpoch atomic.Uint64
}

// New configures the link, opens the listener and starts every goroutine.
// On error everything done so far is undone; the TUN is left to the caller
// either way, and Close closes it.
func New(cfg Config, tun TUN, link Link) (*Device, error) {
	cfg.setDefaults()
	s, err := mls.Suite(cfg.Suite)
	if err != nil {
		return nil, err
	}
	pub, err := s.SignaturePublicKey(cfg.PrivateKey)
	if err != nil {
		return nil, fmt.Errorf("private key: %w", err)
	}
	if err := cfg.check(pub); err != nil {
		return nil, err
	}
	d := &Device{cfg: cfg, log: cfg.Logger, ownPub: pub, tun: tun, byKey: map[string]*peer{}}
	sclock := newSuspendClock()
	d.clock = sclock.now
	d.policy.Store(&rekeyPolicy{interval: cfg.RekeyInterval, bytes: cfg.RekeyBytes})
	d.dialer = net.Dialer{Timeout: dialTimeout, Control: markControl(cfg.Fwmark)}
	d.resolver = markedResolver(cfg.Fwmark)
	d.dialer.Resolver = d.resolver
	d.tunW.dev = tun
	d.helloSlots = make(chan struct{}, maxUnidentified)
	d.guard = newGuard(d.log)
	d.byGroup = map[string]*peer{}
	d.opened.life = cfg.HandshakeTimeout
	if err := d.loadHelloKeys(d.clock()); err != nil {
		return nil, fmt.Errorf("hello keys: %w", err)
	}
	d.net.link = link
	d.ctx, d.cancel = context.WithCancel(context.Background())
	for i := range cfg.Peers {
		if cfg.Peers[i].Name == "" {
			cfg.Peers[i].Name = "peer" + strconv.Itoa(i)
		}
		pc := cfg.Peers[i]
		p := newPeer(d, pc)
		if cfg.StateDir != "" {
			st, err := loadState(cfg.StateDir, pc.PublicKey)
			if err != nil {
				d.log.Warn("ignoring saved session state", "peer", pc.Name, "err", err)
			}
			p.saved = st
			p.peerHelloKey = loadPeerHelloKey(cfg.StateDir, pc.PublicKey)
			if st != nil && len(st.GroupID) > 0 {
				// Routable before the owner restores it.
				d.byGroup[string(st.GroupID)], p.groupID = p, string(st.GroupID)
			}
		}
		d.peers = append(d.peers, p)
		d.byKey[string(pc.PublicKey)] = p
		if err := d.table.SetPeer(p, pc.AllowedIPs); err != nil {
			return nil, fmt.Errorf("%s: allowed IPs: %w", pc.Name, err)
		}
	}

	d.opened.sizeFor(len(d.peers))
	if link != nil {
		if err := d.net.install(cfg.MTU, cfg.Addresses, cfg.wantedRoutes()); err != nil {
			if uerr := d.net.remove(); uerr != nil {
				d.log.Warn("undoing link configuration", "err", uerr)
			}
			return nil, err
		}
	}
	if cfg.ListenPort >= 0 {
		lc := net.ListenConfig{Control: markControl(cfg.Fwmark)}
		ln, err := lc.Listen(context.Background(), "tcp", net.JoinHostPort("", strconv.Itoa(cfg.ListenPort)))
		if err != nil {
			if uerr := d.net.remove(); uerr != nil {
				d.log.Warn("undoing link configuration", "err", uerr)
			}
			return nil, err
		}
		d.ln = ln
		d.log.Info("listening", "transport", "tcp", "addr", ln.Addr().String())
	}
	// UDP on the same port (any port if we do not listen: we still
	// initiate over UDP).
	port := 0
	if d.ln != nil {
		port = d.ln.Addr().(*net.TCPAddr).Port
	}
	if err := d.openUDP(uint16(port)); err != nil {
		if d.ln != nil {
			d.ln.Close()
		}
		if uerr := d.net.remove(); uerr != nil {
			d.log.Warn("undoing link configuration", "err", uerr)
		}
		return nil, fmt.Errorf("UDP port %d: %w", port, err)
	}
	d.log.Info("listening", "transport", "udp", "port", d.udp.port)

	d.sizeBuffers(len(d.peers))
	d.startWriters()
	d.startCrypto()
	d.goFunc(d.reclaimLoop)
	d.goFunc(func() { d.watchSuspend(sclock) })
	d.goFunc(d.readTUN)
	d.goFunc(d.sweepLoop)
	if d.ln != nil {
		d.goFunc(d.acceptLoop)
	}
	d.startHelloWorkers()
	for _, fn := range d.udp.fns {
		d.goFunc(func() { d.readUDP(fn) })
	}
	for _, p := range d.peers {
		d.goOwner(p)
	}
	return d, nil
}

// goOwner starts a peer's owner goroutine.
func (d *Device) goOwner(p *peer) {
	d.owners.Add(1)
	d.goFunc(func() { defer d.owners.Done(); p.run() })
}

func (d *Device) goFunc(f func()) {
	d.wg.Add(1)
	go func() { defer d.wg.Done(); f() }()
}

// ListenAddr is the TCP listener's address, nil if not listening.
func (d *Device) ListenAddr() net.Addr {
	if d.ln == nil {
		return nil
	}
	return d.ln.Addr()
}

// PublicKey is our identity.
func (d *Device) PublicKey() []byte { return bytes.Clone(d.ownPub) }

// UnderlayChanged tells the device that the host's addresses changed
// (routing.WatchAddresses): every UDP session forgets the source address
// it used and sends a keepalive, so that a peer follows us to a new
// address at once (roaming on our side).
func (d *Device) UnderlayChanged() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.peers {
		select {
		case p.underlay <- struct{}{}:
		default:
		}
	}
}

// Rekey asks every established session to start an epoch update.
func (d *Device) Rekey() {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, p := range d.peers {
		p.requestRekey()
	}
}

func (d *Device) peerByKey(k []byte) *peer {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.byKey[string(k)]
}

// Close ends every session (telling peers), stops every goroutine, closes
// the TUN and removes the routes and addresses New installed.
func (d *Device) Close() error {
	var err error
	d.closed.Do(func() {
		d.closing.Store(true)
		d.cancel()
		if d.ln != nil {
			d.ln.Close()
		}
		// Closing the TUN is what unblocks its reader. Routes go before
		// the device does, so remove them first while it still exists.
		d.mu.Lock()
		nerr := d.net.remove()
		d.mu.Unlock()
		terr := d.tun.Close()
		// The owners may still send a last datagram (Close) while they
		// shut down; the UDP readers stop when the sockets close.
		d.mu.Lock()
		peers := slices.Clone(d.peers)
		d.mu.Unlock()
		for _, p := range peers {
			<-p.done
		}
		d.owners.Wait()
		d.saver.flush() // the owners' last saves
		d.stopCrypto()
		d.stopWriters()
		var berr error
		if d.udp.bind != nil {
			berr = d.udp.bind.Close()
		}
		d.wg.Wait()
		d.buf.pool.close()
		err = errors.Join(nerr, terr, berr)
	})
	return err
}

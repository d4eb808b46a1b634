package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"time"

	"github.com/current-vpn/current/config"
	"github.com/current-vpn/current/ctl"
	"github.com/current-vpn/current/internal/atomicfile"
	"github.com/current-vpn/current/internal/buildinfo"
	"github.com/current-vpn/current/tunnel"
)

// rekeyPoll is how often Rekey looks for the new epochs.
const rekeyPoll = 10 * time.Millisecond

// control is the daemon's control socket and the ctl.Backend behind it.
type control struct {
	srv  *ctl.Server
	b    *backend
	done chan struct{}
}

// listenControl creates the control socket of cfg's interface in dir. It
// runs before the tunnel starts, so that a second daemon for the same
// interface stops (ctl.ErrInUse) before it touches the link or routes.
func listenControl(dir string, cfg *config.Config, path string, log *slog.Logger) (*control, error) {
	srv, err := ctl.Listen(cfg.Interface.Name, dir, -1)
	if err != nil {
		if errors.Is(err, ctl.ErrInUse) {
			return nil, fmt.Errorf("control socket: %w; is another currentd running for %s?", err, cfg.Interface.Name)
		}
		return nil, fmt.Errorf("control socket: %w", err)
	}
	srv.Logger = log
	pub, err := cfg.Interface.PrivateKey.Public()
	if err != nil {
		srv.Close()
		return nil, err
	}
	b := &backend{path: path, log: log, pub: pub, cfg: stripKey(cfg)}
	return &control{srv: srv, b: b}, nil
}

// serve starts answering requests about dev.
func (c *control) serve(dev *tunnel.Device) {
	c.b.dev = dev
	c.done = make(chan struct{})
	go func() {
		defer close(c.done)
		if err := c.srv.Serve(c.b); err != nil {
			c.b.log.Error("control socket stopped", "err", err)
		}
	}()
	c.b.log.Info("control socket", "path", c.srv.Path())
}

// Close stops the server and removes the socket; it may be called more
// than once.
func (c *control) Close() {
	if err := c.srv.Close(); err != nil {
		c.b.log.Warn("closing the control socket", "err", err)
	}
	if c.done != nil {
		<-c.done
	}
}

// reload is the SIGHUP reload, serialized with the socket's changes; the
// file's peers replace the running ones (changes made over the socket
// without save are lost).
func (c *control) reload(path string, running *config.Config, dev *tunnel.Device, log *slog.Logger) {
	c.b.mu.Lock()
	defer c.b.mu.Unlock()
	if cfg := reload(path, running, dev, log); cfg != nil {
		c.b.cfg = stripKey(cfg)
	}
}

// stripKey copies cfg without its private key: the backend never needs
// it (Validate skips the key checks without it, Marshal writes the key
// file's path), and the daemon zeroes the loaded copies.
func stripKey(cfg *config.Config) *config.Config {
	c := *cfg
	c.Peers = append([]config.Peer(nil), cfg.Peers...)
	c.Interface.PrivateKey = config.PrivateKey{}
	return &c
}

// backend implements ctl.Backend on a tunnel.Device.
type backend struct {
	path string // the configuration file, for save
	log  *slog.Logger
	pub  config.PublicKey
	dev  *tunnel.Device // set before Serve

	// mu serializes changes; cfg is the running configuration.
	mu  sync.Mutex
	cfg *config.Config
}

var _ ctl.Backend = (*backend)(nil)

func (b *backend) config() *config.Config {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cfg
}

// Status implements ctl.Backend.
func (b *backend) Status() ctl.Status {
	cfg := b.config()
	ifc := cfg.Interface
	st := ctl.Status{
		Time: time.Now().UTC(),
		Interface: ctl.InterfaceStatus{
			Name:          ifc.Name,
			PublicKey:     b.pub,
			ListenPort:    ifc.ListenPort,
			Suite:         config.SuiteName(ifc.Suite),
			RekeyInterval: ctl.Seconds(ifc.RekeyInterval),
			RekeyBytes:    ifc.RekeyBytes,
		},
		Peers:      []ctl.PeerStatus{},
		Goroutines: runtime.NumGoroutine(),
	}
	g := b.dev.GuardStats()
	st.Unauthenticated = ctl.GuardStatus{
		Refused:             g.Refused,
		HandshakesResponded: g.HandshakesResponded,
		CookiesSent:         g.CookiesSent,
		HeldBytes:           g.HeldBytes,
		HeldHellos:          g.HeldHellos,
		HalfOpen:            g.HalfOpen,
	}
	noPeer, invalid := b.dev.Drops()
	st.Dropped = ctl.DeviceDrops{NoPeer: noPeer, Invalid: invalid, NoBuffer: b.dev.BufferStats().DropNoBuffer}
	h := b.dev.HandshakeDurations()
	st.HandshakeDurations = ctl.Histogram{Bounds: h.Bounds, Counts: h.Counts, Count: h.Count, Sum: h.Sum}
	live := map[string]tunnel.PeerStatus{}
	for _, ps := range b.dev.PeerStatus() {
		live[string(ps.PublicKey)] = ps
	}
	for _, p := range cfg.Peers {
		ps := ctl.PeerStatus{
			Name:                p.Name,
			PublicKey:           p.PublicKey,
			Endpoint:            p.Endpoint.String(),
			AllowedIPs:          p.AllowedIPs,
			Transport:           p.Transport.String(),
			PersistentKeepalive: ctl.Seconds(p.PersistentKeepalive),
			State:               ctl.StateIdle,
		}
		if rt, ok := live[string(p.PublicKey.Bytes())]; ok {
			ps.State = ctl.SessionState(rt.State)
			ps.RemoteAddress = rt.RemoteAddress
			ps.ActiveTransport, ps.TransportReason = rt.ActiveTransport, rt.TransportReason
			ps.FallbackSince, ps.UDPProbing, ps.NextUDPProbe = timePtr(rt.FallbackSince), rt.UDPProbing, timePtr(rt.NextUDPProbe)
			ps.Epoch = rt.Epoch
			ps.LastEpochChange = timePtr(rt.LastEpochChange)
			ps.LastHandshake = timePtr(rt.LastHandshake)
			ps.RxBytes, ps.TxBytes = rt.RxBytes, rt.TxBytes
			ps.RxPackets, ps.TxPackets = rt.RxPackets, rt.TxPackets
			ps.Dropped = ctl.DropCounters{Replay: rt.DropReplay, BadSource: rt.DropSource, QueueFull: rt.DropQueueFull,
				UnknownEpoch: rt.DropUnknownEpoch, BadMAC: rt.DropBadMAC}
			ps.EpochChanges = rt.Epochs
			ps.TCPFallbacks = rt.Fallbacks
			hs := rt.Handshake
			ps.Handshakes = ctl.HandshakeCounts{Established: hs.Established, Timeout: hs.TimedOut, Failed: hs.Failed}
			ps.Resumptions = ctl.ResumptionCounts{Resumed: hs.Resumed, Failed: hs.ResumeFailed}
		}
		st.Peers = append(st.Peers, ps)
	}
	return st
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

// apply makes cfg the running configuration (peers only), and saves it
// when asked. Called with b.mu held.
func (b *backend) apply(cfg *config.Config, save bool) error {
	if err := b.dev.Reconfigure(tunnelPeers(cfg, b.log)); err != nil {
		return ctl.Errorf(ctl.CodeInternal, "applying the change: %v", err)
	}
	b.cfg = cfg
	return b.save(save)
}

// save writes the running configuration to the file if asked. Called
// with b.mu held, after the change is in force.
func (b *backend) save(save bool) error {
	if !save {
		return nil
	}
	if err := saveConfig(b.path, b.cfg); err != nil {
		b.log.Error("saving the configuration", "path", b.path, "err", err)
		return ctl.Errorf(ctl.CodeInternal, "the change is in force but saving %s failed: %v", b.path, err)
	}
	b.log.Info("configuration saved", "path", b.path)
	return nil
}

// tunnelPeers is the tunnel's view of cfg's peers.
func tunnelPeers(cfg *config.Config, log *slog.Logger) []tunnel.PeerConfig {
	c := *cfg
	if c.Interface.MTU == 0 {
		c.Interface.MTU = defaultMTU // not used; skips deriving it
	}
	return tunnelConfig(&c, log).Peers
}

// AddPeer implements ctl.Backend.
func (b *backend) AddPeer(p config.Peer, save bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	cfg, err := ctl.ApplyAdd(b.cfg, p)
	if err != nil {
		return err
	}
	if err := b.apply(cfg, save); err != nil {
		return err
	}
	b.log.Info("control: peer added", "peer", p.Name, "allowed_ips", p.AllowedIPs, "saved", save)
	return nil
}

// RemovePeer implements ctl.Backend.
func (b *backend) RemovePeer(ref ctl.PeerRef, save bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	cfg, removed, err := ctl.ApplyRemove(b.cfg, ref)
	if err != nil {
		return err
	}
	if err := b.apply(cfg, save); err != nil {
		return err
	}
	b.log.Info("control: peer removed", "peer", removed.Name, "saved", save)
	return nil
}

// UpdatePeer implements ctl.Backend.
func (b *backend) UpdatePeer(ref ctl.PeerRef, upd ctl.PeerUpdate, save bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	cfg, p, err := ctl.ApplyUpdate(b.cfg, ref, upd)
	if err != nil {
		return err
	}
	if err := b.apply(cfg, save); err != nil {
		return err
	}
	b.log.Info("control: peer updated", "peer", p.Name, "endpoint", p.Endpoint.String(), "allowed_ips", p.AllowedIPs,
		"transport", p.Transport.String(), "keepalive", p.PersistentKeepalive, "saved", save)
	return nil
}

// SetPolicy implements ctl.Backend: the tunnel gives the new policy to
// every running session (each keeps its epoch's age and byte count) and to
// every session it creates later.
func (b *backend) SetPolicy(upd ctl.PolicyUpdate, save bool) (ctl.Policy, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	cfg, err := ctl.ApplyPolicy(b.cfg, upd)
	if err != nil {
		return ctl.Policy{}, err
	}
	setRekeyPolicy(b.dev, cfg)
	b.cfg = cfg
	pol := ctl.Policy{RekeyInterval: cfg.Interface.RekeyInterval, RekeyBytes: cfg.Interface.RekeyBytes}
	b.log.Info("control: rekey policy set", "rekey_interval", pol.RekeyInterval, "rekey_bytes", pol.RekeyBytes, "saved", save)
	return pol, b.save(save)
}

// setRekeyPolicy makes cfg's rekey policy the tunnel's.
func setRekeyPolicy(dev *tunnel.Device, cfg *config.Config) {
	dev.SetRekeyPolicy(tunnelRekeyPolicy(&cfg.Interface))
}

// Rekey implements ctl.Backend: it asks each session for an epoch update
// and waits until the peer's epoch counter moves.
func (b *backend) Rekey(ctx context.Context, ref ctl.PeerRef) ([]ctl.RekeyResult, error) {
	cfg := b.config()
	var targets []config.Peer
	for _, p := range cfg.Peers {
		if ref.IsZero() || ref.Matches(p.Name, p.PublicKey) {
			targets = append(targets, p)
		}
	}
	if len(targets) == 0 {
		return nil, ctl.Errorf(ctl.CodeUnknownPeer, "no peer %q", ref)
	}
	live := b.liveByKey()
	results := make([]ctl.RekeyResult, len(targets))
	before := map[int]uint64{} // index: epoch changes seen before the request
	for i, p := range targets {
		results[i] = ctl.RekeyResult{Peer: p.Name, PublicKey: p.PublicKey}
		rt, ok := live[string(p.PublicKey.Bytes())]
		if !ok || rt.State != tunnel.StateEstablished {
			results[i].Err = ctl.Errorf(ctl.CodeConflict, "peer %s has no established session", p.Name)
			continue
		}
		before[i] = rt.Epochs
		if err := b.dev.RekeyPeer(p.PublicKey.Bytes()); err != nil {
			results[i].Err = ctl.Errorf(ctl.CodeUnknownPeer, "peer %s: %v", p.Name, err)
			delete(before, i)
			continue
		}
		b.log.Info("control: epoch update requested", "peer", p.Name, "epoch", rt.Epoch)
	}
	t := time.NewTicker(rekeyPoll)
	defer t.Stop()
	for len(before) > 0 {
		select {
		case <-ctx.Done():
			for i := range before {
				results[i].Err = ctx.Err()
			}
			return results, nil
		case <-t.C:
		}
		live := b.liveByKey()
		for i, n := range before {
			rt, ok := live[string(targets[i].PublicKey.Bytes())]
			switch {
			case !ok:
				results[i].Err = ctl.Errorf(ctl.CodeConflict, "peer %s was removed", targets[i].Name)
			case rt.Epochs > n && rt.State == tunnel.StateEstablished:
				results[i].Epoch = rt.Epoch
			default:
				continue
			}
			delete(before, i)
		}
	}
	return results, nil
}

func (b *backend) liveByKey() map[string]tunnel.PeerStatus {
	m := map[string]tunnel.PeerStatus{}
	for _, ps := range b.dev.PeerStatus() {
		m[string(ps.PublicKey)] = ps
	}
	return m
}

// Metrics implements ctl.Backend.
func (b *backend) Metrics(w io.Writer) error {
	return ctl.WriteMetrics(w, b.Status(), b.Version())
}

// Version implements ctl.Backend.
func (b *backend) Version() ctl.VersionInfo {
	return ctl.VersionInfo{Version: buildinfo.Version, Commit: buildinfo.Commit, GoVersion: runtime.Version()}
}

// saveConfig replaces the configuration file atomically with cfg, keeping
// the file's mode and owner: a temporary file in the same directory is
// written, synced and renamed over it.
func saveConfig(path string, cfg *config.Config) error {
	data, err := cfg.Marshal()
	if err != nil {
		return err
	}
	// A symbolic link stays one: its target is what gets replaced.
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	uid, gid := -1, -1
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		uid, gid = int(st.Uid), int(st.Gid)
	}
	return atomicfile.WriteFileAs(path, data, fi.Mode().Perm(), uid, gid)
}

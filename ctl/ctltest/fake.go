// Package ctltest provides a fake ctl.Backend for tests of the control
// socket and of currentctl. It keeps a config.Config and changes it with
// ctl's Apply functions, as the daemon does, so it also shows how a
// Backend is meant to be written.
package ctltest

import (
	"context"
	"io"
	"net/netip"
	"sync"
	"time"

	"github.com/current-vpn/current/config"
	"github.com/current-vpn/current/ctl"
)

// Fake is an in-memory Backend. Its exported fields may be changed between
// requests, under Lock/Unlock when a server is running.
type Fake struct {
	sync.Mutex
	Cfg *config.Config
	// Now is the snapshot time; Peers' runtime state is keyed by name.
	Now     time.Time
	Runtime map[string]ctl.PeerStatus
	// Saved counts calls with save set, the configuration they would write
	// being Cfg.
	Saved int
	// RekeyBlock makes Rekey wait for its context, to test timeouts and
	// Close; RekeyCalls counts calls.
	RekeyBlock bool
	RekeyCalls int
	// PanicOn makes the named method panic.
	PanicOn string
}

var _ ctl.Backend = (*Fake)(nil)

// Status implements ctl.Backend.
func (f *Fake) Status() ctl.Status {
	f.Lock()
	defer f.Unlock()
	if f.PanicOn == "Status" {
		panic("fake panic")
	}
	ifc := f.Cfg.Interface
	pub, _ := ifc.PrivateKey.Public()
	st := ctl.Status{
		Time:            f.Now,
		Unauthenticated: ctl.GuardStatus{Refused: map[string]uint64{"bad_hello": 0}},
		Interface: ctl.InterfaceStatus{
			Name:          ifc.Name,
			PublicKey:     pub,
			ListenPort:    ifc.ListenPort,
			Suite:         config.SuiteName(ifc.Suite),
			RekeyInterval: ctl.Seconds(ifc.RekeyInterval),
			RekeyBytes:    ifc.RekeyBytes,
		},
	}
	for _, p := range f.Cfg.Peers {
		ps := f.Runtime[p.Name]
		ps.Name = p.Name
		ps.PublicKey = p.PublicKey
		ps.Endpoint = p.Endpoint.String()
		ps.AllowedIPs = p.AllowedIPs
		ps.Transport = p.Transport.String()
		ps.PersistentKeepalive = ctl.Seconds(p.PersistentKeepalive)
		if ps.State == "" {
			ps.State = ctl.StateIdle
		}
		st.Peers = append(st.Peers, ps)
	}
	return st
}

func (f *Fake) save(save bool) {
	if save {
		f.Saved++
	}
}

// AddPeer implements ctl.Backend.
func (f *Fake) AddPeer(p config.Peer, save bool) error {
	f.Lock()
	defer f.Unlock()
	cfg, err := ctl.ApplyAdd(f.Cfg, p)
	if err != nil {
		return err
	}
	f.Cfg = cfg
	f.save(save)
	return nil
}

// RemovePeer implements ctl.Backend.
func (f *Fake) RemovePeer(ref ctl.PeerRef, save bool) error {
	f.Lock()
	defer f.Unlock()
	cfg, _, err := ctl.ApplyRemove(f.Cfg, ref)
	if err != nil {
		return err
	}
	f.Cfg = cfg
	f.save(save)
	return nil
}

// UpdatePeer implements ctl.Backend.
func (f *Fake) UpdatePeer(ref ctl.PeerRef, upd ctl.PeerUpdate, save bool) error {
	f.Lock()
	defer f.Unlock()
	cfg, _, err := ctl.ApplyUpdate(f.Cfg, ref, upd)
	if err != nil {
		return err
	}
	f.Cfg = cfg
	f.save(save)
	return nil
}

// Rekey implements ctl.Backend: established peers move to the next epoch.
func (f *Fake) Rekey(ctx context.Context, ref ctl.PeerRef) ([]ctl.RekeyResult, error) {
	f.Lock()
	f.RekeyCalls++
	block := f.RekeyBlock
	var targets []config.Peer
	for _, p := range f.Cfg.Peers {
		if ref.IsZero() || ref.Matches(p.Name, p.PublicKey) {
			targets = append(targets, p)
		}
	}
	f.Unlock()
	if len(targets) == 0 {
		return nil, ctl.Errorf(ctl.CodeUnknownPeer, "no peer %q", ref)
	}
	if block {
		<-ctx.Done()
	}
	f.Lock()
	defer f.Unlock()
	var out []ctl.RekeyResult
	for _, p := range targets {
		r := ctl.RekeyResult{Peer: p.Name, PublicKey: p.PublicKey}
		rt := f.Runtime[p.Name]
		switch {
		case ctx.Err() != nil:
			r.Err = ctx.Err()
		case rt.State != ctl.StateEstablished:
			r.Err = ctl.Errorf(ctl.CodeConflict, "peer %s has no established session", p.Name)
		default:
			rt.Epoch++
			now := f.Now
			rt.LastEpochChange = &now
			f.Runtime[p.Name] = rt
			r.Epoch = rt.Epoch
		}
		out = append(out, r)
	}
	return out, nil
}

// SetPolicy implements ctl.Backend.
func (f *Fake) SetPolicy(upd ctl.PolicyUpdate, save bool) (ctl.Policy, error) {
	f.Lock()
	defer f.Unlock()
	cfg, err := ctl.ApplyPolicy(f.Cfg, upd)
	if err != nil {
		return ctl.Policy{}, err
	}
	f.Cfg = cfg
	f.save(save)
	return ctl.Policy{RekeyInterval: cfg.Interface.RekeyInterval, RekeyBytes: cfg.Interface.RekeyBytes}, nil
}

// Metrics implements ctl.Backend.
func (f *Fake) Metrics(w io.Writer) error {
	return ctl.WriteMetrics(w, f.Status(), f.Version())
}

// Version implements ctl.Backend.
func (f *Fake) Version() ctl.VersionInfo {
	return ctl.VersionInfo{Version: "v0.0.0-test", Commit: "abc123", GoVersion: "go1.26"}
}

// NewConfig returns a valid configuration with the given peers (names),
// keyed with fresh keys, and the keys' text forms by name.
func NewConfig(names ...string) (*config.Config, map[string]string, error) {
	priv, err := config.GeneratePrivateKey(config.DefaultSuite)
	if err != nil {
		return nil, nil, err
	}
	cfg := &config.Config{Interface: config.Interface{
		Name:           "current0",
		PrivateKeyFile: "/etc/current/current0.key",
		ListenPort:     config.DefaultListenPort,
		Suite:          config.DefaultSuite,
		StateDir:       config.DefaultStateDir,
		RekeyInterval:  config.DefaultRekeyInterval,
		RekeyBytes:     config.DefaultRekeyBytes,
		PrivateKey:     priv,
	}}
	keys := map[string]string{}
	for i, n := range names {
		k, err := NewPublicKey()
		if err != nil {
			return nil, nil, err
		}
		keys[n] = k.String()
		cfg.Peers = append(cfg.Peers, config.Peer{
			Name:       n,
			PublicKey:  k,
			AllowedIPs: []netip.Prefix{netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 2)}), 32)},
			Transport:  config.TransportUDP,
		})
	}
	return cfg, keys, cfg.Validate()
}

// NewPublicKey returns a fresh public key for the default suite.
func NewPublicKey() (config.PublicKey, error) {
	k, err := config.GeneratePrivateKey(config.DefaultSuite)
	if err != nil {
		return config.PublicKey{}, err
	}
	return k.Public()
}

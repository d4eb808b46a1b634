package ctl

import (
	"context"
	"io"
	"slices"

	"github.com/current-vpn/current/config"
)

// Backend is what the daemon provides to the control server. The server
// has already authenticated the caller, decoded and checked the syntax of
// every argument, and resolved nothing: peer references are passed as the
// caller wrote them, since only the daemon knows its peers.
//
// Methods are called concurrently, from one goroutine per connection, and
// must be safe for that. Errors should be *Error (see Errorf) or wrap one,
// to choose their code; otherwise a context deadline is reported as
// "timeout", a config.ErrorList or *config.Error as "bad_request", and
// anything else as "internal".
//
// Mutating methods apply the change to the running tunnel at once, log it,
// and, only when save is true, write the resulting configuration back to
// the configuration file (config.Config.Marshal; comments are lost, which
// is why saving is opt-in). When the change succeeds but saving fails, the
// change stays in force and the error says so. The Apply functions in this
// package compute the new configuration with the right error codes.
type Backend interface {
	// Status is a snapshot of the interface and every peer, peers in
	// configuration order.
	Status() Status
	// AddPeer adds a peer (CodeConflict if its name, key or one of its
	// prefixes is taken).
	AddPeer(p config.Peer, save bool) error
	// RemovePeer removes a peer (CodeUnknownPeer if there is none) and
	// closes its session.
	RemovePeer(ref PeerRef, save bool) error
	// UpdatePeer changes a peer; its session survives, since the key does
	// not change.
	UpdatePeer(ref PeerRef, upd PeerUpdate, save bool) error
	// Rekey starts an epoch update on the referenced peer's session, or on
	// every established session when ref is zero, and waits until each
	// has reached a new epoch or ctx is done. It returns one result per
	// peer involved; its own error is for the request as a whole
	// (CodeUnknownPeer).
	Rekey(ctx context.Context, ref PeerRef) ([]RekeyResult, error)
	// SetPolicy changes the rekey policy of every session and returns the
	// policy now in force.
	SetPolicy(upd PolicyUpdate, save bool) (Policy, error)
	// Metrics writes the Prometheus text exposition; WriteMetrics does it
	// from a Status, and the daemon may append device-wide counters.
	Metrics(w io.Writer) error
	// Version describes the daemon's build (Protocol and Ops are filled in
	// by the server).
	Version() VersionInfo
}

// ApplyAdd returns a copy of cfg with p added. Name, key and prefix clashes
// are CodeConflict; what config.Validate refuses (a key of the wrong
// algorithm for the suite, say) is CodeBadRequest.
func ApplyAdd(cfg *config.Config, p config.Peer) (*config.Config, error) {
	for _, q := range cfg.Peers {
		switch {
		case q.Name == p.Name:
			return nil, Errorf(CodeConflict, "a peer named %q already exists", p.Name)
		case q.PublicKey.Equal(p.PublicKey):
			return nil, Errorf(CodeConflict, "peer %q already has this public key", q.Name)
		}
		for _, a := range p.AllowedIPs {
			if slices.Contains(q.AllowedIPs, a) {
				return nil, Errorf(CodeConflict, "%s is already routed to peer %q", a, q.Name)
			}
		}
	}
	out := cloneConfig(cfg)
	out.Peers = append(out.Peers, clonePeer(p))
	return validated(out)
}

// ApplyRemove returns a copy of cfg without the referenced peer, and the
// peer removed.
func ApplyRemove(cfg *config.Config, ref PeerRef) (*config.Config, config.Peer, error) {
	i, err := findPeer(cfg, ref)
	if err != nil {
		return nil, config.Peer{}, err
	}
	out := cloneConfig(cfg)
	removed := out.Peers[i]
	out.Peers = slices.Delete(out.Peers, i, i+1)
	return out, removed, nil
}

// ApplyUpdate returns a copy of cfg with the referenced peer changed, and
// the peer as changed.
func ApplyUpdate(cfg *config.Config, ref PeerRef, upd PeerUpdate) (*config.Config, config.Peer, error) {
	i, err := findPeer(cfg, ref)
	if err != nil {
		return nil, config.Peer{}, err
	}
	out := cloneConfig(cfg)
	upd.Apply(&out.Peers[i])
	for j, q := range out.Peers {
		if j == i {
			continue
		}
		for _, a := range out.Peers[i].AllowedIPs {
			if slices.Contains(q.AllowedIPs, a) {
				return nil, config.Peer{}, Errorf(CodeConflict, "%s is already routed to peer %q", a, q.Name)
			}
		}
	}
	out, err = validated(out)
	if err != nil {
		return nil, config.Peer{}, err
	}
	return out, out.Peers[i], nil
}

// ApplyPolicy returns a copy of cfg with the rekey policy changed.
func ApplyPolicy(cfg *config.Config, upd PolicyUpdate) (*config.Config, error) {
	out := cloneConfig(cfg)
	p := upd.Apply(Policy{RekeyInterval: out.Interface.RekeyInterval, RekeyBytes: out.Interface.RekeyBytes})
	out.Interface.RekeyInterval, out.Interface.RekeyBytes = p.RekeyInterval, p.RekeyBytes
	return validated(out)
}

func findPeer(cfg *config.Config, ref PeerRef) (int, error) {
	for i, p := range cfg.Peers {
		if ref.Matches(p.Name, p.PublicKey) {
			return i, nil
		}
	}
	return -1, Errorf(CodeUnknownPeer, "no peer %q", ref)
}

func validated(cfg *config.Config) (*config.Config, error) {
	if err := cfg.Validate(); err != nil {
		return nil, Errorf(CodeBadRequest, "%v", err)
	}
	return cfg, nil
}

// cloneConfig copies what Apply functions change, so that a failed change
// leaves the caller's Config untouched and a successful one shares no
// slices with it.
func cloneConfig(c *config.Config) *config.Config {
	out := *c
	out.Peers = make([]config.Peer, len(c.Peers))
	for i, p := range c.Peers {
		out.Peers[i] = clonePeer(p)
	}
	return &out
}

func clonePeer(p config.Peer) config.Peer {
	p.AllowedIPs = slices.Clone(p.AllowedIPs)
	return p
}

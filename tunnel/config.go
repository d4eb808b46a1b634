package tunnel

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/current-vpn/current/session/mls"
)

// Config is what the tunnel needs, already parsed and checked for syntax:
// package config reads files, this package only runs them.
type Config struct {
	Suite mls.CipherSuiteID
	// PrivateKey is our MLS signature private key; its public half is our
	// identity and the tie-breaker between simultaneous connections.
	PrivateKey []byte
	// ListenPort is the TCP port to accept peers on; 0 picks a free port
	// (ListenAddr tells which), -1 disables listening.
	ListenPort int
	// Addresses are assigned to the TUN device; MTU 0 leaves the device's.
	Addresses []netip.Prefix
	MTU       int
	Peers     []PeerConfig
	Logger    *slog.Logger
	// RekeyInterval and RekeyBytes are the sessions' update schedule
	// (session.Config.UpdateInterval and UpdateBytes): zero means the
	// session's default, negative disables.
	RekeyInterval time.Duration
	RekeyBytes    int64

	// Timing knobs; zero means the default. Tests shorten them.
	HandshakeTimeout time.Duration
	RedialMin        time.Duration
	RedialMax        time.Duration
}

// PeerConfig is one peer.
type PeerConfig struct {
	Name      string
	PublicKey []byte
	// Endpoint is "host:port" to dial; empty means the peer dials us.
	Endpoint   string
	AllowedIPs []netip.Prefix
}

const (
	defaultHandshakeTimeout = 10 * time.Second
	defaultRedialMin        = 500 * time.Millisecond
	defaultRedialMax        = 30 * time.Second
)

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.HandshakeTimeout == 0 {
		c.HandshakeTimeout = defaultHandshakeTimeout
	}
	if c.RedialMin == 0 {
		c.RedialMin = defaultRedialMin
	}
	if c.RedialMax == 0 {
		c.RedialMax = defaultRedialMax
	}
}

func (c *Config) check(ownPub []byte) error {
	seen := map[string]string{string(ownPub): "our own key"}
	for i, p := range c.Peers {
		name := p.Name
		if name == "" {
			name = fmt.Sprintf("peer %d", i)
		}
		if len(p.PublicKey) == 0 {
			return fmt.Errorf("%s: no public key", name)
		}
		if other, dup := seen[string(p.PublicKey)]; dup {
			// The responder finds a peer by its key, so keys must be unique.
			return fmt.Errorf("%s: public key already used by %s", name, other)
		}
		seen[string(p.PublicKey)] = name
		for _, a := range p.AllowedIPs {
			if !a.IsValid() {
				return fmt.Errorf("%s: invalid allowed IP", name)
			}
		}
	}
	if c.ListenPort < -1 || c.ListenPort > 65535 {
		return errors.New("listen port out of range")
	}
	return nil
}

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
	// GiveUp is how long the sessions retry an unanswered control
	// message (an epoch update) before they fail (session.Config.GiveUp;
	// zero: its default).
	GiveUp time.Duration

	// StateDir, if set, is where each session's MLS group (UDP or TCP)
	// is saved after every epoch change and at shutdown (one file per
	// peer, 0600), so that a restart resumes instead of handshaking.
	StateDir string
	// MaxDatagramSize is the sessions' largest datagram (path MTU minus
	// IP and UDP headers); 0 means session.DefaultMaxDatagramSize.
	MaxDatagramSize int
	// Fwmark, if not 0, marks every socket of the device (mark.go), so
	// that a default route through the tunnel does not catch the
	// tunnel's own packets (routing.FullTunnelMark).
	Fwmark uint32
	// ManualRoutes installs no route for the peers' allowed IPs; the
	// administrator routes them to the device.
	ManualRoutes bool

	// Timing knobs; zero means the default. Tests shorten them.
	HandshakeTimeout time.Duration
	// UDPFallback is how long a transport=auto peer waits for a UDP
	// handshake before it switches to TCP.
	UDPFallback time.Duration
	RedialMin   time.Duration
	RedialMax   time.Duration
	// UDPProbeMin and UDPProbeMax bound the wait between UDP probes of a
	// transport=auto peer that fell back to TCP (probe.go): the first
	// comes UDPProbeMin after the fallback, each failed one doubles the
	// wait up to UDPProbeMax, and a change of our addresses probes at
	// once and starts again from UDPProbeMin.
	UDPProbeMin time.Duration
	UDPProbeMax time.Duration
}

// PeerConfig is one peer.
type PeerConfig struct {
	Name      string
	PublicKey []byte
	// Endpoint is "host:port" to dial; empty means the peer dials us.
	Endpoint   string
	AllowedIPs []netip.Prefix
	// Transport is how we reach the peer when we initiate; as responder
	// we accept the peer over TCP and UDP alike.
	Transport Transport
	// PersistentKeepalive, if positive, sends an empty record whenever
	// nothing was sent to the peer for that long.
	PersistentKeepalive time.Duration
}

// Transport selects how a peer is reached. The zero value is TCP.
type Transport uint8

const (
	TransportTCP Transport = iota
	TransportUDP
	// TransportAuto tries UDP first and switches to TCP if the handshake
	// gets no answer within Config.UDPFallback; while on TCP it probes
	// UDP in the background and returns to it once a probe's session
	// carried records both ways (probe.go).
	TransportAuto
)

func (t Transport) String() string {
	switch t {
	case TransportTCP:
		return "tcp"
	case TransportUDP:
		return "udp"
	case TransportAuto:
		return "auto"
	}
	return "transport?"
}

const (
	defaultHandshakeTimeout = 10 * time.Second
	defaultRedialMin        = 500 * time.Millisecond
	defaultRedialMax        = 30 * time.Second
	defaultUDPFallback      = 4 * time.Second
	defaultUDPProbeMin      = 30 * time.Second
	defaultUDPProbeMax      = 5 * time.Minute
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
	if c.UDPFallback == 0 {
		c.UDPFallback = defaultUDPFallback
	}
	if c.RedialMax == 0 {
		c.RedialMax = defaultRedialMax
	}
	if c.UDPProbeMin <= 0 {
		c.UDPProbeMin = defaultUDPProbeMin
	}
	if c.UDPProbeMax < c.UDPProbeMin {
		c.UDPProbeMax = max(defaultUDPProbeMax, c.UDPProbeMin)
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

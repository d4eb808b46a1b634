package ctl

import (
	"net/netip"
	"time"

	"github.com/current-vpn/current/config"
)

// Status is the result of show, and what `currentctl show --json` prints.
// Its JSON schema is stable: fields are only ever added. Every field is
// always present; times that have not happened yet are null.
type Status struct {
	// Time is the daemon's clock when the snapshot was taken, so that
	// "how long ago" is computed against the daemon's clock, not the
	// reader's.
	Time      time.Time       `json:"time"`
	Interface InterfaceStatus `json:"interface"`
	Peers     []PeerStatus    `json:"peers"`
	// Unauthenticated is what the daemon refused of, and holds for,
	// input from anyone not yet authenticated.
	Unauthenticated GuardStatus `json:"unauthenticated"`
	// Goroutines is the daemon's goroutine count (current_goroutines in metrics).
	Goroutines int `json:"goroutines"`
	// Dropped counts outbound packets dropped before any peer is
	// involved.
	Dropped DeviceDrops `json:"dropped"`
	// HandshakeDurations is the histogram of the time sessions took to
	// establish, over all peers.
	HandshakeDurations Histogram `json:"handshake_durations"`
}

// DeviceDrops count packets read from the TUN device or the sockets and
// dropped before any peer is involved.
type DeviceDrops struct {
	// NoPeer: the destination is in no peer's allowed IPs.
	NoPeer uint64 `json:"no_peer"`
	// Invalid: neither IPv4 nor IPv6.
	Invalid uint64 `json:"invalid"`
	// NoBuffer: packets read from the TUN or a UDP socket and dropped
	// because every packet buffer of the data path was in use.
	NoBuffer uint64 `json:"no_buffer"`
}

// Histogram is a Prometheus histogram: Counts[i] durations were at most
// Bounds[i] seconds (cumulative), Count in all, Sum seconds in total.
type Histogram struct {
	Bounds []float64 `json:"bounds"`
	Counts []uint64  `json:"counts"`
	Count  uint64    `json:"count"`
	Sum    float64   `json:"sum"`
}

// HandshakeCounts count a peer's session establishments by outcome.
type HandshakeCounts struct {
	// Established: full handshakes that established a session.
	Established uint64 `json:"established"`
	// Timeout: sessions that did not establish within the handshake
	// timeout (for transport auto, the UDP fallback timeout).
	Timeout uint64 `json:"timeout"`
	// Failed: sessions that failed before they established (a rejected
	// or malformed handshake, a lost connection).
	Failed uint64 `json:"failed"`
}

// ResumptionCounts count a peer's attempts to resume saved state.
type ResumptionCounts struct {
	Resumed uint64 `json:"resumed"`
	// Failed: attempts that did not resume (rejected, timed out, or
	// answered by a full handshake).
	Failed uint64 `json:"failed"`
}

// GuardStatus counts the daemon's defence against unauthenticated input
// (docs/operate.md, "Limits").
type GuardStatus struct {
	// Refused counts refusals by reason: bad_datagram, unknown_index,
	// bad_hello, unknown_peer, hello_budget, rate_host, rate_global,
	// rate_peer, tcp_busy, hello_replay, candidate_busy, bad_key_package.
	Refused map[string]uint64 `json:"refused"`
	// HandshakesResponded counts new ClientHellos admitted to responder
	// work.
	HandshakesResponded uint64 `json:"handshakes_responded"`
	CookiesSent         uint64 `json:"cookies_sent"`
	// HeldBytes and HeldHellos are the partial ClientHellos held before
	// their sender is known; HalfOpen the TCP connections that have not
	// sent a ClientHello yet.
	HeldBytes  int `json:"held_bytes"`
	HeldHellos int `json:"held_hellos"`
	HalfOpen   int `json:"half_open_connections"`
}

// InterfaceStatus is the local end.
type InterfaceStatus struct {
	Name       string           `json:"name"`
	PublicKey  config.PublicKey `json:"public_key"`
	ListenPort uint16           `json:"listen_port"`
	Suite      string           `json:"suite"` // config.SuiteName
	// The rekey policy in force (set changes it).
	RekeyInterval Seconds `json:"rekey_interval_seconds"`
	RekeyBytes    uint64  `json:"rekey_bytes"`
}

// SessionState is where a peer's session stands.
type SessionState string

// Session states.
const (
	// StateIdle: no connection and none being made (no endpoint, waiting
	// for the peer to connect, or backing off before a redial).
	StateIdle SessionState = "idle"
	// StateConnecting: dialing the endpoint.
	StateConnecting SessionState = "connecting"
	// StateHandshaking: connected, MLS handshake in progress.
	StateHandshaking SessionState = "handshaking"
	// StateEstablished: traffic keys in use.
	StateEstablished SessionState = "established"
)

// PeerStatus is one peer.
type PeerStatus struct {
	Name      string           `json:"name"`
	PublicKey config.PublicKey `json:"public_key"`
	// Endpoint is the configured endpoint, "" if none.
	Endpoint string `json:"endpoint"`
	// RemoteAddress is the address of the current connection, "" if none.
	RemoteAddress       string         `json:"remote_address"`
	AllowedIPs          []netip.Prefix `json:"allowed_ips"`
	Transport           string         `json:"transport"` // configured: udp, tcp or auto
	PersistentKeepalive Seconds        `json:"persistent_keepalive_seconds"`

	// ActiveTransport is what the current connection runs over, "udp" or
	// "tcp" ("" without a connection); TransportReason is why:
	// "configured", "fallback" (transport auto, on TCP because UDP got no
	// answer) or "peer" (the peer reached us over it). FallbackSince is
	// when that fallback happened (null unless on TCP by fallback);
	// meanwhile UDPProbing says a UDP probe is under way, and NextUDPProbe
	// is when the next one starts (null if none is scheduled).
	ActiveTransport string     `json:"active_transport"`
	TransportReason string     `json:"transport_reason"`
	FallbackSince   *time.Time `json:"fallback_since"`
	UDPProbing      bool       `json:"udp_probing"`
	NextUDPProbe    *time.Time `json:"next_udp_probe"`

	State SessionState `json:"state"`
	// Epoch is the MLS epoch of the current session, 0 without one.
	Epoch uint64 `json:"epoch"`
	// LastEpochChange is when Epoch last changed (a commit or a new
	// session); LastHandshake when the last session was established.
	LastEpochChange *time.Time `json:"last_epoch_change"`
	LastHandshake   *time.Time `json:"last_handshake"`
	// EpochChanges counts epoch changes since the peer was added.
	EpochChanges uint64           `json:"epoch_changes"`
	TCPFallbacks uint64           `json:"tcp_fallbacks"`
	Handshakes   HandshakeCounts  `json:"handshakes"`
	Resumptions  ResumptionCounts `json:"resumptions"`

	RxBytes   uint64       `json:"rx_bytes"`
	TxBytes   uint64       `json:"tx_bytes"`
	RxPackets uint64       `json:"rx_packets"`
	TxPackets uint64       `json:"tx_packets"`
	Dropped   DropCounters `json:"dropped"`
}

// DropCounters count packets dropped for a peer, by reason. Counters are
// totals since the peer was added.
type DropCounters struct {
	// Replay: inbound records rejected by the anti-replay window.
	Replay uint64 `json:"replay"`
	// BadSource: inbound packets whose source address is outside the
	// peer's allowed IPs, or is one of the interface's own addresses.
	BadSource uint64 `json:"bad_source"`
	// QueueFull: outbound packets dropped because the peer's queue or
	// connection was full.
	QueueFull uint64 `json:"queue_full"`
	// UnknownEpoch: inbound records of an epoch whose keys the session
	// did not hold (too old, past the grace period, or not installed
	// yet); BadMAC: inbound records that failed authentication.
	UnknownEpoch uint64 `json:"unknown_epoch"`
	BadMAC       uint64 `json:"bad_mac"`
}

// VersionInfo is version's result.
type VersionInfo struct {
	// Version, Commit and GoVersion describe the daemon's build
	// (Commit may be "").
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	GoVersion string `json:"go_version"`
	// Protocol and Ops are filled in by the server.
	Protocol int      `json:"protocol"`
	Ops      []string `json:"ops"`
}

// Policy is the rekey policy: a session updates its epoch after Interval
// or after Bytes of traffic, whichever comes first.
type Policy struct {
	RekeyInterval time.Duration
	RekeyBytes    uint64
}

// PolicyUpdate changes some of the policy; nil fields stay as they are.
// The server has checked the values against config's limits.
type PolicyUpdate struct {
	RekeyInterval *time.Duration
	RekeyBytes    *uint64
}

// Apply returns p with u applied.
func (u PolicyUpdate) Apply(p Policy) Policy {
	if u.RekeyInterval != nil {
		p.RekeyInterval = *u.RekeyInterval
	}
	if u.RekeyBytes != nil {
		p.RekeyBytes = *u.RekeyBytes
	}
	return p
}

// PeerUpdate changes some of a peer's settings; nil fields stay as they
// are. The server has checked each value's syntax.
type PeerUpdate struct {
	// Endpoint replaces the endpoint; a zero Endpoint removes it.
	Endpoint *config.Endpoint
	// AllowedIPs replaces the allowed IPs when non-nil (never empty).
	AllowedIPs []netip.Prefix
	// PersistentKeepalive replaces the keepalive; 0 turns it off.
	PersistentKeepalive *time.Duration
	Transport           *config.Transport
}

// Apply changes p as u says. Slices are copied, so p does not share
// memory with u.
func (u PeerUpdate) Apply(p *config.Peer) {
	if u.Endpoint != nil {
		p.Endpoint = *u.Endpoint
	}
	if u.AllowedIPs != nil {
		p.AllowedIPs = append([]netip.Prefix(nil), u.AllowedIPs...)
	}
	if u.PersistentKeepalive != nil {
		p.PersistentKeepalive = *u.PersistentKeepalive
	}
	if u.Transport != nil {
		p.Transport = *u.Transport
	}
}

// IsZero reports whether u changes nothing.
func (u PeerUpdate) IsZero() bool {
	return u.Endpoint == nil && u.AllowedIPs == nil && u.PersistentKeepalive == nil && u.Transport == nil
}

// RekeyResult is one peer's outcome of Backend.Rekey.
type RekeyResult struct {
	Peer      string
	PublicKey config.PublicKey
	// Epoch is the new epoch when Err is nil.
	Epoch uint64
	// Err says why the peer has no new epoch: ctx's deadline (a timeout),
	// or no established session (use an *Error with CodeConflict).
	Err error
}

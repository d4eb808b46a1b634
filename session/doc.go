// Package session is current's session protocol: the sans-IO state machine
// that runs MLS (RFC 9420) as continuous key agreement between two pinned
// peers, following draft-kohbrok-mls-two-party-profile, and protects tunnel
// traffic with TLS 1.3 records keyed from the MLS exporter, following
// draft-kohbrok-mls-tls.
//
// A Session owns no socket, clock, timer or goroutine. The caller passes the
// current time into every call, feeds received bytes to HandleStream, and
// after each call collects Outgoing (bytes to write, in order), Packets
// (decrypted IP packets) and Events (Established, EpochChanged, Closed).
// That keeps the protocol deterministic under test and lets one event loop
// drive many sessions.
//
// Two transports share the state machine. Stream mode (TCP) frames control
// messages as TLS handshake records, plaintext for the two handshake
// messages and protected afterwards (stream.go, framing.go). Datagram mode
// (UDP; HandleDatagram, one datagram per Outgoing element) sends them in
// control datagrams or protected datagram records, fragmented to the path
// MTU and retransmitted until answered (datagram.go, reassembly.go). A
// CookieJar shared by a listener's sessions answers handshakes under load
// with stateless cookies and rate-limits sources (cookie.go). NextTimeout
// and HandleTimeout drive retransmission and the update policy (timers.go).
// messages.go defines the control envelope, handshake.go the
// ClientHello/ServerHello exchange with key pinning, binding.go the CURRENT
// group context extension, update.go the update and key-switch rules,
// resume.go resumption of a persisted group (both modes), reject.go the
// answer of a session that cannot resume. docs/protocol.md
// section 7 specifies the wire format and the rules, section 8 the
// security considerations.
//
// Identity hiding (protocol 1.1; hellokey.go, keyring.go, sealed.go,
// hiding.go): with Config.HideIdentity an initiator seals its ClientHello
// or ResumptionRequest to the responder's hello key, an HPKE key of the
// suite's KEM signed by the responder's pinned key, asked for once and
// cached; the answer comes back sealed. A HelloKeyring, shared by a
// listener's sessions, holds the responder's current and previous hello
// keys and a bounded set of the sealed hellos it opened, and a per-peer
// hello timestamp (Config.HelloFloor) refuses older hellos, so a replay
// costs no asymmetric work while remembered and one HPKE open otherwise.
//
// Peers are authenticated by pinning: each side is configured with the
// other's MLS signature public key and accepts no other, in the KeyPackage,
// the Welcome's tree, or any later commit. A responder checks the pin before
// any signature or HPKE work and gives a stranger no answer at all.
package session

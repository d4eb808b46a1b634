// Package record is current's record layer: the room where tunnel traffic is
// sealed and opened. Every IP packet of every user passes through it, so it is
// built to cost little more than the AEAD call itself.
//
// Keys come from MLS (RFC 9420) acting as continuous key agreement, exactly as
// draft-kohbrok-mls-tls derives them: per epoch, the client (initiator) and
// server (responder) application traffic secrets are MLS exports, and TLS 1.3's
// traffic key calculation (RFC 9846 section 7.3) turns each into a write key
// and IV. The package does not import the MLS engine; it needs only the
// Exporter interface and a Suite describing the AEAD and hash.
//
// Two framings share those keys:
//
//   - Stream records (stream*.go) are byte-exact TLS 1.3 records (RFC 9846
//     section 5) for TCP: implicit sequence numbers, fatal errors.
//   - Datagram records (datagram*.go) are self-contained for UDP: an explicit
//     sequence number, the low epoch bits and the receiver's session index in a
//     15-byte authenticated header, a sliding anti-replay window, and a grace
//     period for the previous epoch. docs/protocol.md specifies the format and
//     explains the choices.
//
// The package has no goroutines, sockets or clocks: callers pass the time in,
// which keeps it deterministic to test. Each Stream*/Datagram* object is one
// direction of one session and must be used by one goroutine at a time.
// Sealing and opening work in place on caller buffers and do not allocate in
// steady state. Errors are constants of type Error so callers can count them.
package record

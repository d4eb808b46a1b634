// Package tunnel is the daemon core of current: it joins a TUN device, the
// host's addresses and routes, the peers' transports and one session per
// peer.
//
// # Goroutines and queues
//
// The design follows wireguard-go's device package, kept serial where
// wireguard-go is parallel (performance is a later concern):
//
//   - one TUN reader reads packet batches, looks the destination up in the
//     allowed-IPs table (cryptokey routing) and puts a copy on the owning
//     peer's bounded outbound queue; a full queue drops the packet, as a
//     congested link would;
//   - one TCP accepter; each accepted connection gets a short-lived
//     goroutine that reads the first ClientHello, finds the peer whose
//     pinned key signed its KeyPackage and hands the connection to that
//     peer, or closes it silently if no peer has that key;
//   - per peer one owner goroutine (peer.run). It alone touches the peer's
//     session.Session, which is sans-IO and not safe for concurrent use, so
//     every call into it is serialised by construction. It selects over the
//     outbound queue, data from the connection reader, new connections,
//     dial results, rekey requests and one timer (NextTimeout, handshake
//     timeout, redial backoff);
//   - per connection a reader goroutine (socket → owner, by channel) and a
//     writer goroutine (owner → socket, by a byte-bounded queue). The owner
//     never blocks on a socket: if both owners of a link blocked writing
//     while their readers waited to hand them data, TCP flow control would
//     deadlock the pair.
//
// Decrypted packets are written to the TUN by the owner that decrypted
// them, after checking that the source address is within that peer's
// allowed IPs.
//
// # Simultaneous connects
//
// Both peers may dial each other at once. A peer keeps at most one
// connection; when a second one appears, both sides keep the connection
// initiated by the side with the lower public key (bytewise comparison of
// the MLS signature public keys, session.PreferOutgoing), so they agree
// without talking. A new
// inbound connection replaces an older inbound one: the peer only dials
// when it has no connection, so a new one means it lost the old. An
// inbound connection that would replace an established one must first
// prove it is the peer and not a replayed ClientHello (candidate.go).
//
// Datagram mode (UDP, udp.go) is a second transport: the peer owner stays
// the only user of the session, fed by socket readers that demultiplex
// datagrams by receiver index, and ClientHellos (after the CookieJar) by
// their KeyPackage's key. A peer's session talks through a carrier: a TCP
// connection or the UDP sockets plus the peer's endpoint, which follows
// the source of its latest authenticated datagram (roaming). Datagram
// sessions are persisted in StateDir and resumed after a restart
// (state.go); transport auto falls back to TCP and stays there.
package tunnel

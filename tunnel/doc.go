// Package tunnel is the daemon core of current: it joins a TUN device, the
// host's addresses and routes, the peers' transports and one session per
// peer.
//
// # Goroutines and queues
//
// The design follows wireguard-go's device package:
//
//   - one TUN reader reads packet batches (GSO super-packets split by
//     wireguard/tun) into receive slots of its own, looks each destination
//     up in the allowed-IPs table (cryptokey routing), copies each packet
//     it routes into a 64 KiB buffer of the device's pool and hands each
//     peer its packets of the read as one batch, by pointer, on the peer's
//     bounded queue; a full queue drops, as a congested link would
//     (buffers.go), and so does a reader that the pool, which lends a
//     bounded number of buffers, refuses one (bufcap.go);
//   - one UDP reader per socket does the same with received datagrams
//     (recvmmsg, UDP GRO split by wireguard/conn), routing them by
//     receiver index before any cryptography (udp.go), but without waking
//     the owners: it hands the peers it queued to to the receive workers
//     (rxworkers.go);
//   - receive workers, one per CPU, each peer always on the same one: a
//     worker takes a peer's owner lock (never waiting for it), opens the
//     peer's queued records of its established session in place, checks
//     their sources and sends a passive keepalive that fell due, and
//     collects the packets of every peer of a read in one batch for the
//     TUN writer. Everything else (control datagrams, hellos, a session's
//     events or fatal error) it leaves to the owner, with the rest of the
//     queue behind it, and wakes the owner; so does an owner that holds
//     its lock. The per-packet cost is then that of the packet, not of
//     waking one goroutine per peer;
//   - one TCP accepter; each accepted connection gets a short-lived
//     goroutine that answers a hello key request, opens the sealed
//     ClientHello that follows (identity hiding, sealed.go), finds the
//     peer whose pinned key is inside and hands the connection to that
//     peer, or closes it silently if no peer has that key;
//   - everything a stranger can make the device hold or do before it is
//     authenticated (partial ClientHellos, half-open connections,
//     handshakes) is budgeted, rate-limited per host and counted by the
//     guard (guard.go, prehello.go, ratelimit.go, hellogate.go), whose
//     sweeper expires what it holds on a timer;
//   - per peer one owner goroutine (peer.run). It, or a receive worker
//     serving the peer, alone touches the peer's session.Session, which
//     is sans-IO and not safe for concurrent use: both hold the peer's
//     owner lock (peer.mu) meanwhile, so every call into it is
//     serialised. The owner selects over the outbound and inbound
//     queues, data from the connection reader, new connections, dial
//     results, rekey requests and one timer (NextTimeout, handshake
//     timeout, redial backoff), which it sets only when the earliest
//     deadline moved. Over UDP it seals and opens whole batches in place
//     through the session's batch calls, whose AEAD work the crypto
//     workers share (crypto.go): fork and join, so sequence numbers,
//     replay windows and epochs are still decided by the lock's holder
//     alone and per-peer order is kept;
//   - crypto workers, one per CPU but one, take chunks of the owners'
//     batches;
//   - writers run the data path's system calls, so that an owner's next
//     batch overlaps its previous batch's sends (writers.go): one TUN
//     writer (GRO-coalesced writes) and one UDP writer per CPU (sendmmsg
//     with UDP GSO), each peer always on the same one, in FIFO order;
//   - per TCP connection a reader goroutine (socket → owner, by channel)
//     and a writer goroutine (owner → socket, by a byte-bounded queue). The
//     owner never blocks on a socket: if both owners of a link blocked
//     writing while their readers waited to hand them data, TCP flow
//     control would deadlock the pair.
//
// Decrypted packets go to the TUN only after the owner checked that
// their source address is within that peer's allowed IPs.
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
// datagrams by receiver index, and sealed hellos (after the CookieJar) by
// the key or group the listener finds when it opens them (sealed.go). A peer's session talks through a carrier: a TCP
// connection or the UDP sockets plus the peer's endpoint, which follows
// the source of its latest authenticated datagram (roaming), and which
// forgets its source address and announces us with a keepalive when our
// own addresses change (Device.UnderlayChanged). Sessions of
// both transports are persisted in StateDir and resumed after a restart
// (state.go; over TCP also after a lost connection, streamresume.go);
// transport auto falls back to TCP and, while there, probes
// UDP next to the TCP session and returns to it (probe.go).
package tunnel

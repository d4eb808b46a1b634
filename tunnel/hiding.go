package tunnel

import (
	"bytes"
	"os"
	"strings"

	"github.com/current-vpn/current/internal/atomicfile"
	"github.com/current-vpn/current/session"
)

// Identity hiding for a peer's sessions: every session seals its hellos
// (HideIdentity) and opens the peer's with the device's keyring. What a
// peer keeps across its sessions: the peer's hello key as a session last
// verified it, cached in StateDir next to the session state so that a
// restart seals at once instead of asking for the key (one round trip
// saved), and the latest hello timestamp of the peer's we accepted, which
// refuses a replayed hello before any signature work.

// hidingConfig adds identity hiding to a session's configuration.
func (p *peer) hidingConfig(cfg *session.Config) {
	cfg.HideIdentity = true
	cfg.PeerHelloKey = p.peerHelloKey
	cfg.HelloKeys = p.dev.hello.ring
	cfg.HelloFloor = p.helloFloor
}

// noteHiding keeps what s learned that outlives it: its group (for the
// listener), the peer's latest hello and the peer's hello key. Owner only.
func (p *peer) noteHiding(s *session.Session) {
	if s == nil {
		return
	}
	p.noteGroup(s)
	if t := s.HelloTime(); t.After(p.helloFloor) {
		p.helloFloor = t
	}
	k := s.PeerHelloKey()
	if k == nil || bytes.Equal(k, p.peerHelloKey) {
		return
	}
	p.peerHelloKey = k
	if dir := p.dev.cfg.StateDir; dir != "" {
		if err := atomicfile.WriteFile(helloKeyPath(dir, p.cfg.PublicKey), k, 0o600); err != nil {
			p.log.Warn("saving the peer's hello key", "err", err)
		}
	}
}

// helloKeyPath is the cached hello key of the peer with public key pub,
// next to its session state.
func helloKeyPath(dir string, pub []byte) string {
	return strings.TrimSuffix(statePath(dir, pub), ".state") + ".hellokey"
}

// loadPeerHelloKey reads a cached hello key; a missing or unusable one is
// nil (the session asks for the key). The key is public and signed by the
// peer's pinned key, which every session checks before using it, so a
// tampered file costs a round trip, not privacy.
func loadPeerHelloKey(dir string, pub []byte) []byte {
	if dir == "" {
		return nil
	}
	b, err := os.ReadFile(helloKeyPath(dir, pub))
	if err != nil {
		return nil
	}
	if _, err := session.ParseHelloKey(b); err != nil {
		return nil
	}
	return b
}

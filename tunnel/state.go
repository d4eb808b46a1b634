package tunnel

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/current-vpn/current/internal/atomicfile"
)

// Session state persistence. After every epoch change (and at shutdown) a
// datagram-mode session's MLS group is written to StateDir, one file per
// peer named by a hash of the peer's public key. A daemon that restarts
// finds it and resumes (session.Config.Resume): both sides move the group
// two epochs forward before any data flows, so record keys are never
// reused. A peer that closed the session explicitly gets its file removed.
//
// The file holds the group's secrets, so it is created 0600 and replaced
// atomically (write to a temporary file, fsync, rename): a crash leaves
// either the old state or the new one, never half of each.
//
// Stream-mode (TCP) sessions are not persisted, and the accepter refuses a
// sealed ResumptionRequest: a TCP connection starts with a handshake.

// savedState is one peer's file.
type savedState struct {
	Version    int    `json:"version"`
	Epoch      uint64 `json:"epoch"`
	LocalIndex uint32 `json:"local_index"`
	PeerIndex  uint32 `json:"peer_index"`
	Group      []byte `json:"group"`
	// GroupID lets the listener route a sealed ResumptionRequest to the
	// peer before its owner has restored the group (sealed.go).
	GroupID []byte `json:"group_id,omitempty"`
}

const stateVersion = 1

// statePath is the file of the peer with public key pub.
func statePath(dir string, pub []byte) string {
	h := sha256.Sum256(pub)
	return filepath.Join(dir, hex.EncodeToString(h[:16])+".state")
}

// loadState reads a peer's saved state; a missing file is (nil, nil).
func loadState(dir string, pub []byte) (*savedState, error) {
	b, err := os.ReadFile(statePath(dir, pub))
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st savedState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", statePath(dir, pub), err)
	}
	if st.Version != stateVersion || len(st.Group) == 0 || st.LocalIndex == 0 || st.PeerIndex == 0 {
		return nil, fmt.Errorf("%s: unusable state", statePath(dir, pub))
	}
	return &st, nil
}

// writeState replaces the file atomically.
func writeState(dir string, pub []byte, st *savedState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	path := statePath(dir, pub)
	return atomicfile.WriteFile(path, b, 0o600)
}

// saveState persists the current datagram session, if any.
func (p *peer) saveState() {
	dir := p.dev.cfg.StateDir
	if dir == "" || p.sess == nil || p.conn == nil || !p.conn.datagram() || !p.sess.Established() {
		return
	}
	group, err := p.sess.State()
	if err != nil {
		return
	}
	st := &savedState{Version: stateVersion, Epoch: p.sess.Epoch(), LocalIndex: p.sess.LocalIndex(), PeerIndex: p.sess.PeerIndex(), Group: group, GroupID: p.sess.GroupID()}
	// The peer's context ends before its last save, at shutdown.
	now, final := p.now(), p.ctx.Err() != nil
	if err := writeState(dir, p.cfg.PublicKey, st); err != nil {
		if log, held, since := p.timers.saves.failed(now, final); log {
			p.log.Warn("saving session state", append(heldArgs(held, since), "epoch", st.Epoch, "err", err)...)
		}
		return
	}
	if log, held, since := p.timers.saves.saved(now, final); log {
		p.log.Info("saving session state works again", append(heldArgs(held, since), "epoch", st.Epoch)...)
	}
	p.log.Debug("session state saved", "epoch", st.Epoch)
}

// heldArgs are the log attributes of failures not logged (saveLog).
func heldArgs(held int, since time.Time) []any {
	if held == 0 {
		return nil
	}
	return []any{"more_failures", held, "since", since}
}

func (p *peer) removeState() {
	if dir := p.dev.cfg.StateDir; dir != "" {
		_ = os.Remove(statePath(dir, p.cfg.PublicKey))
	}
}

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
// session's MLS group is written to StateDir by the state saver (saver.go,
// off the owner goroutine), over either transport, one
// file per peer named by a hash of the peer's public key. A daemon that
// restarts finds it and resumes (session.Config.Resume): both sides move
// the group two epochs forward before any data flows, so record keys are
// never reused, even when the file is older than the session (a kill -9
// after an update that was not saved yet: the peer then rejects the stale
// request and both handshake). A peer that closed the session explicitly
// gets its file removed.
//
// The file holds the group's secrets, so it is created 0600 and replaced
// atomically (write to a temporary file, fsync, rename): a crash leaves
// either the old state or the new one, never half of each.
//
// Over TCP (streamresume.go) a restart, or any lost connection, resumes on
// the next connection: the dialer sends its sealed ResumptionRequest, and
// the accepter's listener routes it by group like the UDP listener.

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
	// Transport is "tcp" for a stream-mode session; empty (the files of
	// older versions) for a datagram one, whose indexes the resumption
	// needs. A stream session has none.
	Transport string `json:"transport,omitempty"`

	// dialFailed: a connection we dialed to resume from this state ended
	// before it established (the listener did not know the group, or
	// the connection broke), so our next dial handshakes afresh; the
	// state still answers the peer's own ResumptionRequest. Not saved.
	dialFailed bool
}

// savedStream is the Transport of a stream-mode session's state.
const savedStream = "tcp"

// stream reports whether st is a stream-mode (TCP) session's.
func (st *savedState) stream() bool { return st.Transport == savedStream }

const stateVersion = 1

// statePath is the file of the peer with public key pub.
func statePath(dir string, pub []byte) string {
	h := sha256.Sum256(pub)
	return filepath.Join(dir, hex.EncodeToString(h[:16])+".state")
}

// loadState reads a peer's saved state; a missing file is (nil, nil).
func loadState(dir string, pub []byte) (*savedState, error) {
	return loadStatePath(statePath(dir, pub))
}

func loadStatePath(path string) (*savedState, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer clear(b)
	var st savedState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if !st.usable() {
		return nil, fmt.Errorf("%s: unusable state", path)
	}
	return &st, nil
}

// usable reports whether st has what a resumption needs: a group, and in
// datagram mode both receiver indexes.
func (st *savedState) usable() bool {
	if st.Version != stateVersion || len(st.Group) == 0 {
		return false
	}
	switch st.Transport {
	case savedStream:
		return true
	case "":
		return st.LocalIndex != 0 && st.PeerIndex != 0
	}
	return false
}

// writeState replaces the file atomically.
func writeState(dir string, pub []byte, st *savedState) error {
	return writeStatePath(statePath(dir, pub), st)
}

func writeStatePath(path string, st *savedState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	defer clear(b) // the group's secrets, in base64
	return atomicfile.WriteFile(path, b, 0o600)
}

// saveState hands the current session, if any, to the state saver
// (saver.go), which writes it soon after. The session written supersedes
// any state kept to resume from (streamresume.go).
func (p *peer) saveState() {
	if p.sess != nil && p.sess.Established() {
		p.forgetSaved()
	}
	dir := p.dev.cfg.StateDir
	if dir == "" || p.sess == nil || p.conn == nil || !p.sess.Established() {
		return
	}
	st, err := p.sessionState()
	if err != nil {
		return
	}
	// The peer's context ends before its last save, at shutdown.
	p.dev.saver.submit(statePath(dir, p.cfg.PublicKey), &saveJob{
		st: st, final: p.ctx.Err() != nil, report: &p.saves, log: p.log, now: p.now,
	})
}

// sessionState is the current established session as saved state.
func (p *peer) sessionState() (*savedState, error) {
	group, err := p.sess.State()
	if err != nil {
		return nil, err
	}
	st := &savedState{Version: stateVersion, Epoch: p.sess.Epoch(), Group: group, GroupID: p.sess.GroupID()}
	if p.conn.datagram() {
		st.LocalIndex, st.PeerIndex = p.sess.LocalIndex(), p.sess.PeerIndex()
	} else {
		st.Transport = savedStream
	}
	return st, nil
}

// heldArgs are the log attributes of failures not logged (saveLog).
func heldArgs(held int, since time.Time) []any {
	if held == 0 {
		return nil
	}
	return []any{"more_failures", held, "since", since}
}

// removeState deletes the peer's file and forgets the state kept in
// memory: the peer closed the session, so there is nothing to resume. The
// removal goes through the saver, after (or instead of) the saves still
// queued, which would otherwise write the file again.
func (p *peer) removeState() {
	p.forgetSaved()
	if dir := p.dev.cfg.StateDir; dir != "" {
		p.dev.saver.submit(statePath(dir, p.cfg.PublicKey), &saveJob{report: &p.saves, log: p.log, now: p.now})
	}
}

package tunnel

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/current-vpn/current/session"
)

// FuzzLoadState reads an arbitrary state file as a restarting daemon
// does: it is refused with an error, or it is usable and writes back to
// the same state.
func FuzzLoadState(f *testing.F) {
	_, rk, dir := stateFuzzSetup(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := loadStateFile(t, dir, rk.pub, data)
		if err != nil {
			return
		}
		if st == nil || !st.usable() {
			t.Fatalf("loaded an unusable state: %+v", st)
		}
		if err := writeState(dir, rk.pub, st); err != nil {
			t.Fatal(err)
		}
		again, err := loadState(dir, rk.pub)
		if err != nil || !reflect.DeepEqual(again, st) {
			t.Fatalf("state changed by a write and a read: %+v, %v", again, err)
		}
	})
}

// FuzzStreamResumeState resumes TCP sessions of both roles from an
// arbitrary state file that loadState accepts, as a restarted daemon's
// next connection does: no content makes resuming panic, and a resuming
// dialer always sends something (its request, or a ClientHello when the
// group does not restore), which the accepter takes or refuses with an
// error. The session package's own fuzzing of resumed groups is
// FuzzResumeState (datagram mode).
func FuzzStreamResumeState(f *testing.F) {
	ik, rk, dir := stateFuzzSetup(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := loadStateFile(t, dir, rk.pub, data)
		if err != nil || !st.stream() {
			return
		}
		now := time.Unix(1_700_000_000, 0)
		i, err := session.New(session.Config{Role: session.Initiator, Suite: testSuite, SigningKey: ik.priv,
			PeerPublicKey: rk.pub, Transport: session.Stream, Resume: st.Group})
		if err != nil {
			t.Fatal(err)
		}
		if err := i.Start(now); err != nil {
			return
		}
		out := i.Outgoing()
		if len(out) == 0 {
			t.Fatal("a resuming dialer sent nothing")
		}
		r, err := session.New(session.Config{Role: session.Responder, Suite: testSuite, SigningKey: rk.priv,
			PeerPublicKey: ik.pub, Transport: session.Stream, Resume: st.Group})
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Start(now); err != nil {
			return
		}
		for _, b := range out {
			if r.HandleStream(now, b) != nil {
				return
			}
		}
	})
}

// stateFuzzSetup makes the keys of a real stream session, seeds f with
// state files around its group, and returns the directory to load from.
func stateFuzzSetup(f *testing.F) (ik, rk keyPair, dir string) {
	ik, rk = newKeys(f, testSuite), newKeys(f, testSuite)
	group, epoch := establishedStreamGroup(f, ik, rk)
	for _, b := range stateSeeds(f, group, epoch) {
		f.Add(b)
	}
	return ik, rk, f.TempDir()
}

// loadStateFile writes data as the state file of pub in dir and loads it
// as a restarting daemon does.
func loadStateFile(t *testing.T, dir string, pub, data []byte) (*savedState, error) {
	if err := os.WriteFile(statePath(dir, pub), data, 0o600); err != nil {
		t.Fatal(err)
	}
	return loadState(dir, pub)
}

// stateSeeds are state files around a real group: usable ones of both
// transports, a truncated group, an unknown transport, broken JSON.
func stateSeeds(f *testing.F, group []byte, epoch uint64) [][]byte {
	var out [][]byte
	for _, st := range []savedState{
		{Version: stateVersion, Epoch: epoch, Group: group, Transport: savedStream},
		{Version: stateVersion, Epoch: epoch, Group: group, LocalIndex: 7, PeerIndex: 9},
		{Version: stateVersion, Group: group[:len(group)/2], Transport: savedStream},
		{Version: stateVersion, Group: group, Transport: "quic"},
	} {
		b, err := json.Marshal(st)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, b)
	}
	return append(out, []byte(`{"version":1,"group":"AA==","transport":"tcp"}`),
		[]byte(`{"version":1,"group":"AA==","local_index":1}`), []byte("not json"))
}

// establishedStreamGroup runs a stream-mode handshake between the
// initiator key ik and the responder key rk and returns the initiator's
// group as Session.State gives it, and its epoch.
func establishedStreamGroup(tb testing.TB, ik, rk keyPair) ([]byte, uint64) {
	tb.Helper()
	now := time.Unix(1_700_000_000, 0)
	i, err := session.New(session.Config{Role: session.Initiator, Suite: testSuite, SigningKey: ik.priv, PeerPublicKey: rk.pub, Transport: session.Stream})
	if err != nil {
		tb.Fatal(err)
	}
	r, err := session.New(session.Config{Role: session.Responder, Suite: testSuite, SigningKey: rk.priv, PeerPublicKey: ik.pub, Transport: session.Stream})
	if err != nil {
		tb.Fatal(err)
	}
	if err := r.Start(now); err != nil {
		tb.Fatal(err)
	}
	if err := i.Start(now); err != nil {
		tb.Fatal(err)
	}
	for range 8 {
		for _, b := range i.Outgoing() {
			if err := r.HandleStream(now, b); err != nil {
				tb.Fatal(err)
			}
		}
		for _, b := range r.Outgoing() {
			if err := i.HandleStream(now, b); err != nil {
				tb.Fatal(err)
			}
		}
		if i.Established() && r.Established() {
			g, err := i.State()
			if err != nil {
				tb.Fatal(err)
			}
			return g, i.Epoch()
		}
	}
	tb.Fatal("no handshake")
	return nil, 0
}

//go:build mlsopcount

package session

import (
	"fmt"
	"maps"
	"slices"
	"testing"

	"github.com/current-vpn/current/session/mls"
)

// TestResponderOpCount prints how many public-key operations of each kind
// the responder of a datagram-mode handshake performs (New, Start and the
// ClientHello), and for comparison the initiator and one epoch update.
// The responder's counts are pinned: they are the floor that
// bench/cmd/inprocess (floor.go) times, and docs/protocol.md 7.7 argues
// for each. `make test` runs this with the tag.
// Run with: go test -tags mlsopcount -run OpCount -v ./session/
func TestResponderOpCount(t *testing.T) {
	for _, id := range responderSuites {
		s, _ := mls.Suite(id)
		t.Run(suiteName(s), func(t *testing.T) {
			ik, rk := newKeys(t, id), newKeys(t, id)
			// A daemon has answered handshakes with its key before.
			wk := newKeys(t, id)
			warm := newDatagramSession(t, Initiator, id, wk, rk.pub, t0)
			respond(t, id, rk, wk.pub, warm.Outgoing(), t0)
			i := newDatagramSession(t, Initiator, id, ik, rk.pub, t0)
			hello := i.Outgoing()
			mls.ResetOpCounts()
			r := respond(t, id, rk, ik.pub, hello, t0)
			got := mls.OpCounts()
			t.Logf("responder: %s", formatOps(got))
			want := map[string]int{"hpke.generate": 1, "hpke.parsePub": 1, "hpke.seal": 1, "sig.sign": 3, "sig.verify": 2}
			if id == mls.MLS192MLKEM768AES256GCMSHA384MLDSA65 {
				// The ML-DSA key is expanded from its seed once per group.
				want["sig.expand"] = 1
			}
			if !maps.Equal(got, want) {
				t.Errorf("responder operations %s, want %s", formatOps(got), formatOps(want))
			}
			mls.ResetOpCounts()
			settle(t, r, i, t0)
			if !i.Established() {
				t.Fatal("initiator not established")
			}
			t.Logf("initiator ServerHello: %s", formatOps(mls.OpCounts()))
			// Updates in steady state: each side has committed once.
			for _, p := range [][2]*Session{{r, i}, {i, r}} {
				if err := p[0].Update(t0); err != nil {
					t.Fatal(err)
				}
				settle(t, p[0], p[1], t0)
			}
			mls.ResetOpCounts()
			if err := r.Update(t0); err != nil {
				t.Fatal(err)
			}
			settle(t, r, i, t0)
			if r.Epoch() != 4 || i.Epoch() != 4 {
				t.Fatalf("epochs %d/%d, want 4", r.Epoch(), i.Epoch())
			}
			t.Logf("epoch update (both sides): %s", formatOps(mls.OpCounts()))
		})
	}
}

func formatOps(m map[string]int) string {
	out := ""
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out += fmt.Sprintf("%s=%d ", k, m[k])
	}
	return out
}

// TestResumeOpCount prints and pins the public-key operations of one
// sealed resumption (BenchmarkResumeHub, BenchmarkResumePeer) per side:
// the floor that BenchmarkResumeFloor times.
func TestResumeOpCount(t *testing.T) {
	for _, id := range responderSuites {
		s, _ := mls.Suite(id)
		t.Run(suiteName(s), func(t *testing.T) {
			f := newResumeFixture(t, id, newKeys(t, id))
			mls.ResetOpCounts()
			peer := f.peer(t)
			request := peer.Outgoing()
			peerOps := mls.OpCounts()
			mls.ResetOpCounts()
			hub := f.hub(t)
			for _, d := range request {
				_ = hub.HandleDatagram(t0, d)
			}
			hubOps := mls.OpCounts()
			answer := hub.Outgoing()
			mls.ResetOpCounts()
			for _, d := range answer {
				_ = peer.HandleDatagram(t0, d)
			}
			peerOps = addOps(peerOps, mls.OpCounts())
			resumed(t, peer, hub)
			t.Logf("hub: %s", formatOps(hubOps))
			t.Logf("peer: %s", formatOps(peerOps))
			// resume_floor_bench_test.go's floor, as the engine names
			// the operations: "derive" for the key pairs drawn from path
			// secrets, "pubFromPriv" where a restored private key is
			// parsed (and checked against the tree) for its one
			// decryption, "parsePub" for the keys encrypted to.
			wantHub := map[string]int{"hpke.derive": 3, "hpke.importPriv": 1, "hpke.pubFromPriv": 1, "hpke.open": 2,
				"hpke.parsePub": 1, "hpke.seal": 1, "sig.sign": 2, "sig.verify": 2}
			wantPeer := map[string]int{"hpke.derive": 3, "hpke.open": 1, "hpke.parsePub": 2, "hpke.seal": 2,
				"sig.sign": 2, "sig.verify": 3}
			if id == mls.MLS192MLKEM768AES256GCMSHA384MLDSA65 {
				// The ML-DSA key is expanded at the load and again for
				// signing (the group does not keep it expanded).
				wantHub["sig.expand"], wantPeer["sig.expand"] = 2, 2
			}
			if !maps.Equal(hubOps, wantHub) {
				t.Errorf("hub operations %s, want %s", formatOps(hubOps), formatOps(wantHub))
			}
			if !maps.Equal(peerOps, wantPeer) {
				t.Errorf("peer operations %s, want %s", formatOps(peerOps), formatOps(wantPeer))
			}
		})
	}
}

func addOps(a, b map[string]int) map[string]int {
	out := maps.Clone(a)
	for k, v := range b {
		out[k] += v
	}
	return out
}

//go:build mlsopcount

package session

import (
	"maps"
	"testing"
	"time"

	"github.com/current-vpn/current/session/mls"
)

// TestSealedHelloOpCount pins the responder's public-key operations for a
// sealed hello: those of a plaintext one (TestResponderOpCount) plus one
// HPKE open. Then it replays the captured sealed hello as an attacker
// would, on new TCP connections and from new UDP sources (new responder
// sessions, as a listener makes them), and counts: no asymmetric
// operation at all while the keyring remembers the hello, and after a
// restart (keyring reloaded, replay set lost) exactly one HPKE open, after
// which the peer's hello timestamp refuses it.
func TestSealedHelloOpCount(t *testing.T) {
	eachModeAndSuite(t, func(t *testing.T, mode Transport, id mls.CipherSuiteID) {
		ik, rk := newKeys(t, id), newKeys(t, id)
		ring := newKeyring(t, id, rk, t0)
		warmI, warmR := hidingPair(t, mode, id, newKeys(t, id), rk, ring, encodedKey(t, ring.Current()), t0)
		warmR.cfg.PeerPublicKey = warmI.ownPub
		converge(t, warmI, warmR, t0)

		i, r := hidingPair(t, mode, id, ik, rk, ring, encodedKey(t, ring.Current()), t0)
		hello := i.Outgoing()
		mls.ResetOpCounts()
		feed(t, r, hello)
		got := mls.OpCounts()
		t.Logf("responder, sealed hello: %s", formatOps(got))
		// The hello key was parsed once, when it was installed.
		want := map[string]int{"hpke.generate": 1, "hpke.parsePub": 1, "hpke.seal": 1, "sig.sign": 3, "sig.verify": 2,
			"hpke.open": 1}
		if id == mls.MLS192MLKEM768AES256GCMSHA384MLDSA65 {
			want["sig.expand"] = 1
		}
		if !maps.Equal(got, want) {
			t.Errorf("responder operations %s, want %s", formatOps(got), formatOps(want))
		}
		answer := r.Outgoing()
		feed(t, i, answer)
		if !i.Established() {
			t.Fatal("initiator not established")
		}
		floor := r.HelloTime()
		if !floor.Equal(t0) {
			t.Fatalf("HelloTime %v, want %v", floor, t0)
		}

		// Replays on new connections / from new sources.
		for n := 0; n < 3; n++ {
			fresh := newResponderSession(t, mode, id, rk, ik.pub, ring, time.Time{}, t0)
			mls.ResetOpCounts()
			feed(t, fresh, hello)
			if ops := mls.OpCounts(); len(ops) != 0 || len(fresh.Outgoing()) != 0 || fresh.Established() {
				t.Fatalf("replay %d cost %s", n, formatOps(ops))
			}
		}
		// After a restart: same keys, empty replay set, the
		// persisted floor.
		reloaded := reloadKeyring(t, ring)
		fresh := newResponderSession(t, mode, id, rk, ik.pub, reloaded, floor, t0)
		mls.ResetOpCounts()
		feed(t, fresh, hello)
		ops := mls.OpCounts()
		t.Logf("replay after a restart: %s", formatOps(ops))
		if !maps.Equal(ops, map[string]int{"hpke.open": 1}) || len(fresh.Outgoing()) != 0 {
			t.Fatalf("replay after a restart cost %s", formatOps(ops))
		}
	})
}

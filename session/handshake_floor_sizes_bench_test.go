//go:build mlsopcount

package session

import (
	"testing"

	"github.com/current-vpn/current/session/mls"
)

// responderSignedSizes runs one responder handshake and returns the
// lengths of the messages it verified and signed: the encoded SignContent
// of the KeyPackage and its leaf, of the creator's leaf, the commit and the
// GroupInfo, whose sizes the wire fixes.
func responderSignedSizes(tb testing.TB, id mls.CipherSuiteID) floorSizes {
	ik, rk := newKeys(tb, id), newKeys(tb, id)
	i := newDatagramSession(tb, Initiator, id, ik, rk.pub, t0)
	hello := i.Outgoing()
	mls.ResetOpCounts()
	respond(tb, id, rk, ik.pub, hello, t0)
	got := mls.SignedSizes()
	sz := floorSizes{verify: got["sig.verify"], sign: got["sig.sign"]}
	if len(sz.verify) != len(inprocessFloor.verify) || len(sz.sign) != len(inprocessFloor.sign) {
		tb.Fatalf("responder verified %d and signed %d messages, the floor has %d and %d",
			len(sz.verify), len(sz.sign), len(inprocessFloor.verify), len(inprocessFloor.sign))
	}
	return sz
}

// BenchmarkResponderFloorWireSizes is BenchmarkResponderFloor with the
// messages of the lengths a responder really verifies and signs: the
// difference between the two is what hashing the RFC 9420 structures
// inside the signature scheme adds (Ed25519 hashes the whole message with
// SHA-512, once to verify and twice to sign), a cost of the public-key
// operations that no change leaving the wire alone can remove.
// Run with: go test -tags mlsopcount -run '^$' -bench 'ResponderFloor' ./session/
func BenchmarkResponderFloorWireSizes(b *testing.B) {
	for _, id := range responderSuites {
		s, _ := mls.Suite(id)
		b.Run(suiteName(s), func(b *testing.B) {
			sz := responderSignedSizes(b, id)
			var verified, signed int
			for _, n := range sz.verify {
				verified += n
			}
			for _, n := range sz.sign {
				signed += n
			}
			benchFloor(b, id, sz)
			// After the run: its timer reset clears metrics.
			b.ReportMetric(float64(verified), "verified-B")
			b.ReportMetric(float64(signed), "signed-B")
		})
	}
}

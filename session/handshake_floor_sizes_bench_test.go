//go:build mlsopcount

package session

import (
	"testing"
	"time"

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

// BenchmarkResponderFloorWireSizes times the floor's rounds with the
// messages of the lengths a responder really verifies and signs, next to
// BenchmarkResponderFloor's 256-byte ones: the two alternate, one of each
// per iteration, so that both see the same machine. The difference
// (excess-cpu-ns/op) is what hashing the RFC 9420 structures inside the
// signature scheme adds (Ed25519 hashes the whole message with SHA-512,
// once to verify and twice to sign): a cost of the public-key operations
// that no change leaving the wire alone can remove.
// Run with: go test -tags mlsopcount -run '^$' -bench 'ResponderFloorWire' ./session/
func BenchmarkResponderFloorWireSizes(b *testing.B) {
	for _, id := range responderSuites {
		s, _ := mls.Suite(id)
		b.Run(suiteName(s), func(b *testing.B) {
			wire := responderSignedSizes(b, id)
			k := newKeys(b, id)
			var small, real []*floorInput
			var smallCPU, realCPU time.Duration
			timeRounds := func(ins []*floorInput) time.Duration {
				c0 := threadCPU()
				for _, in := range ins {
					floorRound(b, s, k, in)
				}
				return threadCPU() - c0
			}
			inBatches(b, 16, func(_, n int) {
				small, real = make([]*floorInput, n), make([]*floorInput, n)
				for i := range small {
					small[i] = newFloorInput(b, s, k, inprocessFloor)
					real[i] = newFloorInput(b, s, k, wire)
				}
			}, func(done int) {
				// Each batch starts with the other kind.
				if done/16%2 == 0 {
					smallCPU += timeRounds(small)
					realCPU += timeRounds(real)
				} else {
					realCPU += timeRounds(real)
					smallCPU += timeRounds(small)
				}
			}, func() {})
			// After the run: its timer reset clears metrics.
			perOp := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(b.N) }
			b.ReportMetric(perOp(smallCPU), "floor-cpu-ns/op")
			b.ReportMetric(perOp(realCPU), "wire-cpu-ns/op")
			b.ReportMetric(perOp(realCPU-smallCPU), "excess-cpu-ns/op")
			b.ReportMetric(float64(totalBytes(wire.verify)), "verified-B")
			b.ReportMetric(float64(totalBytes(wire.sign)), "signed-B")
		})
	}
}

func totalBytes(ns []int) (total int) {
	for _, n := range ns {
		total += n
	}
	return total
}

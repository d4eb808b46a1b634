package session

import (
	"runtime"
	"testing"
	"time"

	"github.com/current-vpn/current/session/mls"
)

// BenchmarkHandshakeSealed is BenchmarkHandshake with identity hiding: a
// full stream-mode handshake with a cached hello key (SealedHello,
// SealedAnswer), both sides, in memory; the bytes on the wire per message
// are reported, with those of first contact's extra round trip.
func BenchmarkHandshakeSealed(b *testing.B) {
	for _, s := range mls.Suites() {
		b.Run(suiteName(s), func(b *testing.B) {
			ik, rk := newKeys(b, s.ID), newKeys(b, s.ID)
			ring := newKeyring(b, s.ID, rk, t0)
			cached := encodedKey(b, ring.Current())
			i, r := hidingPair(b, Stream, s.ID, ik, rk, ring, nil, t0)
			request := outLen(i)
			pass(b, i, r, t0)
			answer := outLen(r)
			b.ReportAllocs()
			var hello, welcome int
			for b.Loop() {
				i, r := hidingPair(b, Stream, s.ID, ik, rk, ring, cached, t0)
				hello = outLen(i)
				pass(b, i, r, t0)
				welcome = outLen(r)
				pass(b, r, i, t0)
				if !i.Established() {
					b.Fatal("not established")
				}
			}
			b.ReportMetric(float64(hello), "SealedHello-B")
			b.ReportMetric(float64(welcome), "SealedAnswer-B")
			b.ReportMetric(float64(request), "HelloKeyRequest-B")
			b.ReportMetric(float64(answer), "HelloKeyAnswer-B")
		})
	}
}

// BenchmarkResponderHandshakeSealed is BenchmarkResponderHandshake for a
// sealed hello to a cached key: the responder's New, Start and the
// SealedHello's datagrams, thread CPU reported as cpu-ns/op.
func BenchmarkResponderHandshakeSealed(b *testing.B) {
	const batch = 32
	for _, id := range responderSuites {
		s, _ := mls.Suite(id)
		b.Run(suiteName(s), func(b *testing.B) {
			rk := newKeys(b, id)
			ring := newKeyring(b, id, rk, t0)
			cached := encodedKey(b, ring.Current())
			iks := make([]keyPair, 16)
			for n := range iks {
				iks[n] = newKeys(b, id)
			}
			b.ReportAllocs()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var cpu time.Duration
			b.ResetTimer()
			for done := 0; done < b.N; done += batch {
				b.StopTimer()
				n := min(batch, b.N-done)
				is := make([]*Session, n)
				hellos := make([][][]byte, n)
				for k := range is {
					is[k], _ = hidingPair(b, Datagram, id, iks[(done+k)%len(iks)], rk, ring, cached, t0)
					hellos[k] = is[k].Outgoing()
				}
				rs := make([]*Session, n)
				b.StartTimer()
				c0 := threadCPU()
				for k := range rs {
					rs[k] = newResponderSession(b, Datagram, id, rk, iks[(done+k)%len(iks)].pub, ring, time.Time{}, t0)
					for _, d := range hellos[k] {
						_ = rs[k].HandleDatagram(t0, d)
					}
				}
				cpu += threadCPU() - c0
				b.StopTimer()
				for k := range rs {
					settle(b, rs[k], is[k], t0)
					if !rs[k].Established() || !is[k].Established() {
						b.Fatal("not established")
					}
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkHelloKeyOpen is the responder's open of a sealed hello
// (HelloKeyring.OpenHello: decode, replay check, one HPKE open under the
// parsed hello key, the content parsed), the asymmetric operation identity
// hiding adds to BenchmarkResponderHandshake; thread CPU as cpu-ns/op.
// The hellos are sealed in batches with the timer stopped, each opened
// once (a second open of the same bytes is refused as a replay).
func BenchmarkHelloKeyOpen(b *testing.B) {
	const batch = 64
	for _, id := range responderSuites {
		s, _ := mls.Suite(id)
		b.Run(suiteName(s), func(b *testing.B) {
			rk := newKeys(b, id)
			ring := newKeyring(b, id, rk, t0)
			key := ring.Current()
			ik := newKeys(b, id)
			kp, _, _, err := mls.NewKeyPackage(s, ik.priv, mls.Credential{CredentialType: mls.CredentialBasic, Identity: ik.pub},
				mls.KeyPackageOptions{Now: t0, Capabilities: leafCapabilities()})
			if err != nil {
				b.Fatal(err)
			}
			hello, err := EncodeControl(&ClientHello{KeyPackage: &mls.MLSMessage{Version: mls.ProtocolMLS10, WireFormat: mls.WireFormatKeyPackage, KeyPackage: kp}})
			if err != nil {
				b.Fatal(err)
			}
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var cpu time.Duration
			b.ResetTimer()
			for done := 0; done < b.N; done += batch {
				b.StopTimer()
				envs := make([][]byte, min(batch, b.N-done))
				for k := range envs {
					sh, _, err := sealHello(s, key, t0, hello, randomReader)
					if err != nil {
						b.Fatal(err)
					}
					if envs[k], err = EncodeControl(sh); err != nil {
						b.Fatal(err)
					}
				}
				b.StartTimer()
				c0 := threadCPU()
				for _, env := range envs {
					oh, err := ring.OpenHello(t0, env)
					if err != nil || !sameKey(oh.SignatureKey, ik.pub) {
						b.Fatalf("open: %v", err)
					}
				}
				cpu += threadCPU() - c0
			}
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

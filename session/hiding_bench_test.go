package session

import (
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
	eachResponderSuite(b, func(b *testing.B, id mls.CipherSuiteID, rk keyPair) {
		ring := newKeyring(b, id, rk, t0)
		cached := encodedKey(b, ring.Current())
		benchResponder(b, id, func(ik keyPair) *Session {
			i, _ := hidingPair(b, Datagram, id, ik, rk, ring, cached, t0)
			return i
		}, func(ik keyPair, hello [][]byte) *Session {
			r := newResponderSession(b, Datagram, id, rk, ik.pub, ring, time.Time{}, t0)
			for _, d := range hello {
				_ = r.HandleDatagram(t0, d)
			}
			return r
		})
	})
}

// BenchmarkHelloKeyOpen is the responder's open of a sealed hello
// (HelloKeyring.OpenHello: decode, replay check, one HPKE open under the
// parsed hello key, the content parsed), the asymmetric operation identity
// hiding adds to BenchmarkResponderHandshake; thread CPU as cpu-ns/op.
// The hellos are sealed in batches with the timer stopped, each opened
// once (a second open of the same bytes is refused as a replay).
func BenchmarkHelloKeyOpen(b *testing.B) {
	eachResponderSuite(b, func(b *testing.B, id mls.CipherSuiteID, rk keyPair) {
		s, _ := mls.Suite(id)
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
		var envs [][]byte
		var opened []*OpenedHello
		inBatches(b, 64, func(_, n int) {
			envs, opened = make([][]byte, n), make([]*OpenedHello, n)
			for k := range envs {
				sh, _, err := sealHello(s, key, t0, hello, randomReader)
				if err != nil {
					b.Fatal(err)
				}
				if envs[k], err = EncodeControl(sh); err != nil {
					b.Fatal(err)
				}
			}
		}, func(int) {
			for k, env := range envs {
				opened[k], _ = ring.OpenHello(t0, env)
			}
		}, func() {
			for _, oh := range opened {
				if oh == nil || !sameKey(oh.SignatureKey, ik.pub) {
					b.Fatal("a sealed hello did not open")
				}
			}
		})
	})
}

package session

import (
	"errors"
	"testing"
	"time"

	"github.com/current-vpn/current/session/mls"
)

// responderSuites are the suites the responder benchmarks cover: the
// classical default of RFC 9420, current's default (X-Wing) and the pure
// post-quantum suite.
var responderSuites = []mls.CipherSuiteID{
	mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519,
	mls.MLS128MLKEM768X25519AES128GCMSHA256Ed25519,
	mls.MLS192MLKEM768AES256GCMSHA384MLDSA65,
}

func newDatagramSession(tb testing.TB, role Role, id mls.CipherSuiteID, own keyPair, pin []byte, now time.Time) *Session {
	tb.Helper()
	s, err := New(Config{Role: role, Suite: id, SigningKey: own.priv, PeerPublicKey: pin,
		Transport: Datagram, UpdateInterval: -1, UpdateBytes: -1})
	if err != nil {
		tb.Fatal(err)
	}
	if err := s.Start(now); err != nil {
		tb.Fatal(err)
	}
	return s
}

// respond runs the responder's whole part of one datagram-mode handshake
// (New, Start, every datagram of the ClientHello) and returns its answer.
func respond(tb testing.TB, id mls.CipherSuiteID, rk keyPair, pin []byte, hello [][]byte, now time.Time) *Session {
	r := newDatagramSession(tb, Responder, id, rk, pin, now)
	for _, d := range hello {
		if err := r.HandleDatagram(now, d); err != nil && !errors.Is(err, ErrDropped) {
			tb.Fatal(err)
		}
	}
	if !r.Established() {
		tb.Fatal("responder not established")
	}
	return r
}

// BenchmarkResponderHandshake is the figure bench/cmd/inprocess reports as
// handshake_responder_per_core: only the responder's time is measured, for
// a fresh initiator (made with the timer stopped) per handshake.
func BenchmarkResponderHandshake(b *testing.B) {
	for _, id := range responderSuites {
		s, _ := mls.Suite(id)
		b.Run(suiteName(s), func(b *testing.B) {
			rk := newKeys(b, id)
			iks := make([]keyPair, 16)
			for n := range iks {
				iks[n] = newKeys(b, id)
			}
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				b.StopTimer()
				ik := iks[n%len(iks)]
				n++
				i := newDatagramSession(b, Initiator, id, ik, rk.pub, t0)
				hello := i.Outgoing()
				b.StartTimer()
				r := respond(b, id, rk, ik.pub, hello, t0)
				b.StopTimer()
				// The initiator must accept the answer, or the figure
				// would measure a broken handshake.
				settle(b, r, i, t0)
				if !i.Established() {
					b.Fatal("initiator not established")
				}
				b.StartTimer()
			}
		})
	}
}

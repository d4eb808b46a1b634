package session

import (
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/current-vpn/current/session/mls"
	"golang.org/x/sys/unix"
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
// handshake_responder_per_core: only the responder's time is measured (New,
// Start and the ClientHello), for a fresh initiator per handshake. The
// initiators and their ClientHellos are made in batches with the timer
// stopped, and each answer is checked afterwards.
func BenchmarkResponderHandshake(b *testing.B) {
	const batch = 32
	for _, id := range responderSuites {
		s, _ := mls.Suite(id)
		b.Run(suiteName(s), func(b *testing.B) {
			rk := newKeys(b, id)
			iks := make([]keyPair, 16)
			for n := range iks {
				iks[n] = newKeys(b, id)
			}
			b.ReportAllocs()
			// The thread's own CPU time, which on a shared machine
			// counts less of the other processes than wall time does.
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
					is[k] = newDatagramSession(b, Initiator, id, iks[(done+k)%len(iks)], rk.pub, t0)
					hellos[k] = is[k].Outgoing()
				}
				rs := make([]*Session, n)
				b.StartTimer()
				c0 := threadCPU()
				for k := range rs {
					rs[k] = respond(b, id, rk, iks[(done+k)%len(iks)].pub, hellos[k], t0)
				}
				cpu += threadCPU() - c0
				b.StopTimer()
				// The initiators must accept the answers, or the figure
				// would measure a broken handshake.
				for k := range rs {
					settle(b, rs[k], is[k], t0)
					if !is[k].Established() {
						b.Fatal("initiator not established")
					}
				}
				b.StartTimer()
			}
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

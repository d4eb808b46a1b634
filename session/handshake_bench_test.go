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
	eachResponderSuite(b, func(b *testing.B, id mls.CipherSuiteID, rk keyPair) {
		benchResponder(b, id, func(ik keyPair) *Session {
			return newDatagramSession(b, Initiator, id, ik, rk.pub, t0)
		}, func(ik keyPair, hello [][]byte) *Session {
			return respond(b, id, rk, ik.pub, hello, t0)
		})
	})
}

// benchResponder times respond, the responder's whole part of a handshake
// with a fresh initiator (from 16 identities, made by initiator in batches
// with the timer stopped) given its hello; the initiators must accept the
// answers afterwards, or the figure would measure a broken handshake.
func benchResponder(b *testing.B, id mls.CipherSuiteID, initiator func(keyPair) *Session, respond func(ik keyPair, hello [][]byte) *Session) {
	iks := make([]keyPair, 16)
	for n := range iks {
		iks[n] = newKeys(b, id)
	}
	b.ReportAllocs()
	var is, rs []*Session
	var hellos [][][]byte
	inBatches(b, 32, func(done, n int) {
		is, rs, hellos = make([]*Session, n), make([]*Session, n), make([][][]byte, n)
		for k := range is {
			is[k] = initiator(iks[(done+k)%len(iks)])
			hellos[k] = is[k].Outgoing()
		}
	}, func(done int) {
		for k := range rs {
			rs[k] = respond(iks[(done+k)%len(iks)], hellos[k])
		}
	}, func() {
		for k := range rs {
			settle(b, rs[k], is[k], t0)
			if !rs[k].Established() || !is[k].Established() {
				b.Fatal("not established")
			}
		}
	})
}

// inBatches runs b.N operations in batches of up to batch: prepare(done, n)
// makes the inputs of the n operations from the done-th on with the timer
// stopped, run(done) does them timed, and check (with the timer stopped)
// verifies their results.
func inBatches(b *testing.B, batch int, prepare func(done, n int), run func(done int), check func()) {
	timedSteps(b, batch, untimed(prepare), timed(run), untimed(func(int, int) { check() }))
}

// benchStep is one step of a batch in timedSteps: with the timer running
// or stopped.
type benchStep struct {
	timed bool
	run   func(done, n int)
}

func untimed(f func(done, n int)) benchStep { return benchStep{run: f} }

func timed(f func(done int)) benchStep {
	return benchStep{timed: true, run: func(done, _ int) { f(done) }}
}

// timedSteps runs b.N operations in batches of up to batch, each batch
// through steps in order (done: operations before the batch, n: its
// size); only the timed steps count. Their thread CPU time is reported as
// cpu-ns/op: on a shared machine it counts less of the other processes
// than wall time does.
func timedSteps(b *testing.B, batch int, steps ...benchStep) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var cpu time.Duration
	b.ResetTimer()
	b.StopTimer()
	for done := 0; done < b.N; done += batch {
		n := min(batch, b.N-done)
		for _, st := range steps {
			if !st.timed {
				st.run(done, n)
				continue
			}
			b.StartTimer()
			c0 := threadCPU()
			st.run(done, n)
			cpu += threadCPU() - c0
			b.StopTimer()
		}
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// eachResponderSuite runs f as one sub-benchmark per responder suite, with
// the responder's signature keys.
func eachResponderSuite(b *testing.B, f func(b *testing.B, id mls.CipherSuiteID, rk keyPair)) {
	for _, id := range responderSuites {
		s, _ := mls.Suite(id)
		b.Run(suiteName(s), func(b *testing.B) { f(b, id, newKeys(b, id)) })
	}
}

func threadCPU() time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return time.Duration(ts.Nano())
}

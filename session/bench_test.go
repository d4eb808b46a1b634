package session

import (
	"fmt"
	"testing"

	"github.com/current-vpn/current/session/mls"
)

func outLen(s *Session) int {
	n := 0
	for _, b := range s.out {
		n += len(b)
	}
	return n
}

func suiteName(s *mls.CipherSuite) string { return fmt.Sprintf("%#04x", uint16(s.ID)) }

// BenchmarkHandshake: a full stream-mode handshake, both sides, in memory,
// for every suite; the bytes of each message on the wire (with framing)
// are reported as metrics.
func BenchmarkHandshake(b *testing.B) {
	for _, s := range mls.Suites() {
		b.Run(suiteName(s), func(b *testing.B) {
			ik, rk := newKeys(b, s.ID), newKeys(b, s.ID)
			b.ReportAllocs()
			var hello, welcome int
			for b.Loop() {
				l := newLinkWith(b, s.ID, 1, ik, rk)
				hello = outLen(l.a.s)
				l.flush(l.a, l.b)
				welcome = outLen(l.b.s)
				l.pump()
				if !l.a.s.Established() {
					b.Fatal("not established")
				}
			}
			b.ReportMetric(float64(hello), "ClientHello-B")
			b.ReportMetric(float64(welcome), "ServerHello-B")
		})
	}
}

// BenchmarkEpochUpdate: one update (ConnectionUpdate, the peer's
// EpochKeyUpdate, the committer's switch marker) in stream mode.
func BenchmarkEpochUpdate(b *testing.B) {
	for _, s := range mls.Suites() {
		b.Run(suiteName(s), func(b *testing.B) {
			l := newLink(b, s.ID, 1)
			l.pump()
			b.ReportAllocs()
			var update, confirm, marker int
			for b.Loop() {
				if err := l.a.s.Update(t0); err != nil {
					b.Fatal(err)
				}
				update = outLen(l.a.s)
				l.flush(l.a, l.b)
				confirm = outLen(l.b.s)
				l.flush(l.b, l.a)
				marker = outLen(l.a.s)
				l.flush(l.a, l.b)
			}
			b.ReportMetric(float64(update), "ConnectionUpdate-B")
			b.ReportMetric(float64(confirm), "EpochKeyUpdate-B")
			b.ReportMetric(float64(marker), "marker-B")
		})
	}
}

// BenchmarkSealPacket compares SendPacket (allocates the record) with
// SealPacketTo into a reused buffer with headroom.
func BenchmarkSealPacket(b *testing.B) {
	id := testSuites[0]
	for _, mode := range []Transport{Datagram, Stream} {
		var i, r *Session
		if mode == Datagram {
			i, r = newDatagramPair(b, id, newKeys(b, id), newKeys(b, id))
			settle(b, i, r, t0)
		} else {
			l := newLink(b, id, 1)
			l.pump()
			i = l.a.s
		}
		i.cfg.UpdateBytes = -1
		pkt := make([]byte, 1400)
		b.Run(fmt.Sprintf("SendPacket/%d", mode), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(pkt)))
			for b.Loop() {
				if err := i.SendPacket(t0, pkt); err != nil {
					b.Fatal(err)
				}
				i.Outgoing()
			}
		})
		b.Run(fmt.Sprintf("SealPacketTo/%d", mode), func(b *testing.B) {
			buf := make([]byte, 0, PacketOverhead(mode)+len(pkt))
			b.ReportAllocs()
			b.SetBytes(int64(len(pkt)))
			for b.Loop() {
				if _, err := i.SealPacketTo(t0, buf, pkt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

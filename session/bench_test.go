package session

import (
	"fmt"
	"testing"
)

func outLen(s *Session) int {
	n := 0
	for _, b := range s.out {
		n += len(b)
	}
	return n
}

func BenchmarkHandshake(b *testing.B) {
	for _, id := range testSuites {
		b.Run(fmt.Sprintf("%#04x", uint16(id)), func(b *testing.B) {
			ik, rk := newKeys(b, id), newKeys(b, id)
			b.ReportAllocs()
			var hello, welcome int
			for b.Loop() {
				l := newLinkWith(b, id, 1, ik, rk)
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

func BenchmarkEpochUpdate(b *testing.B) {
	for _, id := range testSuites {
		b.Run(fmt.Sprintf("%#04x", uint16(id)), func(b *testing.B) {
			l := newLink(b, id, 1)
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

package record

import (
	"strconv"
	"testing"
	"time"
)

// The benchmarks compare the record layer with the bare cipher.AEAD it wraps
// (the very same object, taken from the installed keys), per suite and packet
// size. Throughput (MB/s) counts payload bytes only, so the record overhead
// shows up as lost throughput. The acceptance target is datagram seal and
// open at 1400 bytes within 90% of the raw AEAD.

var benchSizes = []int{64, 1400, 8192}

// benchEach runs fn as sub-benchmarks size/suite.
func benchEach(b *testing.B, sizes []int, fn func(b *testing.B, s Suite, n int)) {
	for _, n := range sizes {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			for _, tc := range testSuites {
				b.Run(tc.name, func(b *testing.B) {
					b.SetBytes(int64(n))
					b.ReportAllocs()
					fn(b, tc.suite, n)
				})
			}
		})
	}
}

// benchSeqWrap keeps long benchmark runs under the AES-GCM record limit.
// Reusing nonces is harmless here: nothing is ever sent.
const benchSeqWrap = 1 << 22

func BenchmarkSealDatagram(b *testing.B) {
	benchEach(b, benchSizes, func(b *testing.B, s Suite, n int) {
		snd, _ := datagramPair(b, s, 1, 1, Config{})
		buf := make([]byte, n+DatagramOverhead)
		payload := buf[DatagramHeaderLen : DatagramHeaderLen+n]
		for b.Loop() {
			if snd.use.seq == benchSeqWrap {
				snd.use.seq = 0
			}
			if _, err := snd.Seal(buf[:0], ContentApplicationData, payload, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkRawAEADSeal(b *testing.B) {
	benchEach(b, benchSizes, func(b *testing.B, s Suite, n int) {
		snd, _ := datagramPair(b, s, 1, 1, Config{})
		aead := snd.keys.aead
		nonce := make([]byte, ivLen)
		buf := make([]byte, n+DatagramOverhead)
		hdr, pt := buf[:DatagramHeaderLen], buf[DatagramHeaderLen:DatagramHeaderLen+n]
		for b.Loop() {
			aead.Seal(pt[:0], nonce, pt, hdr)
		}
	})
}

// openPool is a batch of datagrams with distinct sequence numbers. Opening
// decrypts in place, so every iteration first copies one into the work
// buffer; the raw baseline does the same copy, so the comparison stays fair.
const openPool = 256

func BenchmarkOpenDatagram(b *testing.B) {
	benchEach(b, benchSizes, func(b *testing.B, s Suite, n int) {
		snd, rcv := datagramPair(b, s, 1, 1, Config{})
		pool := make([][]byte, openPool)
		for i := range pool {
			pool[i], _ = snd.Seal(nil, ContentApplicationData, make([]byte, n), 0)
		}
		work := make([]byte, n+DatagramOverhead)
		win := &rcv.slots[rcv.cur].window
		i := 0
		for b.Loop() {
			if i == openPool {
				// Same datagrams again: forget them rather than re-seal.
				i = 0
				win.reset()
			}
			copy(work, pool[i])
			if _, _, err := rcv.Open(work, time.Duration(i)); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

func BenchmarkRawAEADOpen(b *testing.B) {
	benchEach(b, benchSizes, func(b *testing.B, s Suite, n int) {
		snd, rcv := datagramPair(b, s, 1, 1, Config{})
		keys := rcv.slots[rcv.cur].keys
		pool := make([][]byte, openPool)
		nonces := make([][]byte, openPool)
		for i := range pool {
			pool[i], _ = snd.Seal(nil, ContentApplicationData, make([]byte, n), 0)
			var nonce [ivLen]byte
			keys.nonce(&nonce, uint64(i))
			nonces[i] = nonce[:]
		}
		work := make([]byte, n+DatagramOverhead)
		hdr, ct := work[:DatagramHeaderLen], work[DatagramHeaderLen:]
		i := 0
		for b.Loop() {
			if i == openPool {
				i = 0
			}
			copy(work, pool[i])
			if _, err := keys.aead.Open(ct[:0], nonces[i], ct, hdr); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

func BenchmarkSealStream(b *testing.B) {
	benchEach(b, []int{1400}, func(b *testing.B, s Suite, n int) {
		w, _ := streamPair(b, s, 1)
		buf := make([]byte, n+StreamOverhead)
		payload := buf[StreamHeaderLen : StreamHeaderLen+n]
		for b.Loop() {
			if w.use.seq == benchSeqWrap {
				w.use.seq = 0
			}
			if _, err := w.SealRecord(buf[:0], ContentApplicationData, payload, 0); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkOpenStream includes the copy into the parser's buffer, as a TCP
// read would.
func BenchmarkOpenStream(b *testing.B) {
	benchEach(b, []int{1400}, func(b *testing.B, s Suite, n int) {
		w, r := streamPair(b, s, 1)
		var wire []byte
		for i := 0; i < openPool; i++ {
			wire, _ = w.SealRecord(wire, ContentApplicationData, make([]byte, n), 0)
		}
		recLen := n + StreamOverhead
		i := 0
		for b.Loop() {
			if i == openPool {
				i = 0
				r.seq = 0
			}
			r.Feed(wire[i*recLen : (i+1)*recLen])
			if _, _, err := r.Next(); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

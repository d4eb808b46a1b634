package tun

import (
	"net/netip"
	"testing"
)

// BenchmarkSplitTCP splits a 64 KiB TSO super-packet into 1368-byte
// segments (the tunnel's MTU of 1420 less the headers), into buffers the
// size of the daemon's pool buffers, spread over a pool's worth of memory
// as the daemon's are.
func BenchmarkSplitTCP(b *testing.B) {
	const seg = 1368
	src, dst := netip.MustParseAddrPort("192.0.2.1:5001"), netip.MustParseAddrPort("192.0.2.2:4000")
	in := superTCP(src, dst, 47*seg, seg, tcpFlagACK)
	const sets = 32 // 32 × 48 buffers of 2 KiB: larger than L2 on most machines
	bufs := make([][][]byte, sets)
	for s := range bufs {
		bufs[s] = make([][]byte, 48)
		for i := range bufs[s] {
			bufs[s][i] = make([]byte, 2048)
		}
	}
	sizes := make([]int, 48)
	b.SetBytes(int64(len(in)))
	b.ResetTimer()
	for i := range b.N {
		set := bufs[i%sets]
		get := func(n int) [][]byte { return set[:min(n, len(set))] }
		if k, err := splitVirtio(in, get, sizes, 16); err != nil || k != 47 {
			b.Fatalf("split = %d, %v", k, err)
		}
	}
}

func BenchmarkSumBytes(b *testing.B) {
	buf := make([]byte, 1388)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	b.SetBytes(int64(len(buf)))
	var s uint64
	for range b.N {
		s = sumBytes(buf, s)
	}
	sink = s
}

var sink uint64

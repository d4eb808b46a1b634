//go:build !linux

package tunnel

import "golang.zx2c4.com/wireguard/conn"

// Elsewhere than Linux the sockets are wireguard/conn's StdNetBind, one
// datagram per message.

func openUDPBind(port uint16) (udpBind, []udpReader, uint16, error) {
	b := conn.NewStdNetBind()
	fns, actual, err := b.Open(port)
	if err != nil {
		return nil, nil, 0, err
	}
	readers := make([]udpReader, len(fns))
	for i, fn := range fns {
		readers[i] = newStdReader(fn, max(b.BatchSize(), 1))
	}
	return b, readers, actual, nil
}

// stdReader adapts a ReceiveFunc to udpReader.
type stdReader struct {
	fn    conn.ReceiveFunc
	sizes []int
	eps   []conn.Endpoint
}

func newStdReader(fn conn.ReceiveFunc, n int) *stdReader {
	return &stdReader{fn: fn, sizes: make([]int, n), eps: make([]conn.Endpoint, n)}
}

func (r *stdReader) batch() int { return len(r.sizes) }

func (r *stdReader) read(bufs [][]byte, msgs []udpMsg) (int, error) {
	k := min(len(bufs), len(msgs), len(r.sizes))
	n, err := r.fn(bufs[:k], r.sizes[:k], r.eps[:k])
	for i := range n {
		msgs[i] = udpMsg{n: r.sizes[i], ep: r.eps[i]}
		r.eps[i] = nil
	}
	return n, err
}

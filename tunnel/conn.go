package tunnel

import (
	"net"
	"sync"
	"time"

	"github.com/current-vpn/current/session"
)

// maxQueuedBytes bounds what the owner may queue on a connection for
// tunnelled packets. Control messages are queued regardless: dropping one
// would break the stream, and there are few of them.
const maxQueuedBytes = 1 << 20

// maxQueuedBufs bounds the pool buffers those records are in: a record of
// one small packet holds a whole buffer, so the byte bound alone would let
// a connection whose peer stopped reading take most of the buffer budget
// (bufcap.go). Two batches keep the writer busy while the owner seals.
const maxQueuedBufs = 2 * maxBatch

// closeFlushTimeout bounds how long a closing connection tries to deliver
// what is queued (typically a Close or Alert).
const closeFlushTimeout = time.Second

// readBufSize is the reader's buffer; a full-size stream record fits.
const readBufSize = 1 << 16

// streamConn is one TCP connection of a peer. The owner goroutine queues
// bytes with send; the writer goroutine writes them; the reader goroutine
// passes received bytes to the owner's channel.
type streamConn struct {
	nc       net.Conn
	outbound bool   // we dialed it
	prefix   []byte // bytes read before the owner took the connection
	// opened is the sealed hello the accepter opened, for the session.
	opened *session.OpenedHello
	// helloHash identifies the ClientHello of an accepted connection.
	helloHash [32]byte
	// resumes: its session started from a kept group (streamresume.go).
	resumes bool

	mu    sync.Mutex
	queue [][]byte
	// owned are batches of records sealed in pooled buffers, part of
	// queue; the writer releases them once written. ownedBufs counts
	// their buffers.
	owned     []*ioBatch
	ownedBufs int
	queued    int
	closing   bool // flush the queue, then close
	wake      chan struct{}
	done      chan struct{} // closed when the connection is finished with
	once      sync.Once
}

func newStreamConn(nc net.Conn, outbound bool, prefix []byte) *streamConn {
	if tc, ok := nc.(*net.TCPConn); ok {
		// Packets are sealed one record each; waiting to coalesce them
		// would only add latency.
		_ = tc.SetNoDelay(true)
		_ = tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: 15 * time.Second, Interval: 5 * time.Second, Count: 3})
	}
	return &streamConn{nc: nc, outbound: outbound, prefix: prefix, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

// connEvent is received data, or the error that ended the reader.
type connEvent struct {
	c    *streamConn
	data []byte
	err  error
	// buf holds data; release returns it to readBufPool once the owner
	// is done with data (sessions copy what they keep).
	buf *[]byte
}

// readBufPool recycles the readers' buffers: a buffer goes from a
// connection's reader to the owner with the bytes it holds, and back.
var readBufPool = sync.Pool{New: func() any {
	b := make([]byte, readBufSize)
	return &b
}}

func (ev *connEvent) release() {
	if ev.buf != nil {
		readBufPool.Put(ev.buf)
		ev.buf, ev.data = nil, nil
	}
}

// start launches the reader and writer; wg tracks both.
func (c *streamConn) start(wg *sync.WaitGroup, events chan<- connEvent) {
	wg.Add(2)
	go func() { defer wg.Done(); c.readLoop(events) }()
	go func() { defer wg.Done(); c.writeLoop() }()
}

func (c *streamConn) readLoop(events chan<- connEvent) {
	for {
		buf := readBufPool.Get().(*[]byte)
		n, err := c.nc.Read(*buf)
		ev := connEvent{c: c}
		if n > 0 {
			ev.data, ev.buf = (*buf)[:n], buf
		} else {
			readBufPool.Put(buf)
			if err == nil {
				continue
			}
			ev.err = err
		}
		select {
		case events <- ev:
		case <-c.done:
			ev.release()
			return
		}
		if ev.err != nil {
			return
		}
	}
}

// roomForData reports whether the owner may seal another packet for this
// connection; if not, the packet is dropped before it consumes a sequence
// number.
func (c *streamConn) roomForData() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.queued < maxQueuedBytes && c.ownedBufs < maxQueuedBufs && !c.closing
}

func (c *streamConn) send(bufs [][]byte) {
	if len(bufs) == 0 {
		return
	}
	c.mu.Lock()
	if !c.closing {
		for _, b := range bufs {
			c.queue = append(c.queue, b)
			c.queued += len(b)
		}
	}
	c.mu.Unlock()
	c.signal()
}

// sendOwned queues the records of b, sealed in place in its buffers,
// behind everything queued before; the writer releases b once they are
// written (or dropped with the connection).
func (c *streamConn) sendOwned(b *ioBatch) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		b.release()
		return
	}
	for _, r := range b.pkts {
		c.queue = append(c.queue, r)
		c.queued += len(r)
	}
	c.owned = append(c.owned, b)
	c.ownedBufs += len(b.bufs)
	c.mu.Unlock()
	c.signal()
}

func (c *streamConn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *streamConn) writeLoop() {
	defer c.nc.Close()
	defer c.drop()
	for {
		select {
		case <-c.wake:
		case <-c.done:
			return
		}
		c.mu.Lock()
		q, owned, closing := c.queue, c.owned, c.closing
		c.queue, c.owned, c.queued, c.ownedBufs = nil, nil, 0, 0
		c.mu.Unlock()
		if len(q) > 0 {
			bufs := net.Buffers(q)
			_, err := bufs.WriteTo(c.nc)
			for _, b := range owned {
				b.release()
			}
			if err != nil {
				// The reader fails too once the socket is closed, and
				// tells the owner.
				c.abort()
				return
			}
		}
		if closing {
			c.abort()
			return
		}
	}
}

// drop ends the queue when the writer stops: what is still queued is
// released (pool buffers must come back, bufcap.go), and whatever the
// owner queues later is released at once (closing).
func (c *streamConn) drop() {
	c.mu.Lock()
	owned := c.owned
	c.queue, c.owned, c.queued, c.ownedBufs, c.closing = nil, nil, 0, 0, true
	c.mu.Unlock()
	for _, b := range owned {
		b.release()
	}
}

// close ends the connection after writing what is queued.
func (c *streamConn) close() {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	// The writer may be blocked in a write to a peer that stopped
	// reading; the deadline bounds that too.
	_ = c.nc.SetWriteDeadline(time.Now().Add(closeFlushTimeout))
	c.signal()
}

// abort ends the connection at once.
func (c *streamConn) abort() {
	c.once.Do(func() {
		close(c.done)
		c.nc.Close()
	})
}

func (c *streamConn) isOutbound() bool { return c.outbound }
func (c *streamConn) datagram() bool   { return false }
func (c *streamConn) remote() string   { return c.nc.RemoteAddr().String() }

// carrier is what a peer's session talks through: a TCP connection
// (streamConn) or the UDP sockets with the peer's endpoint (dgramCarrier).
type carrier interface {
	send(bufs [][]byte)
	roomForData() bool
	close()
	isOutbound() bool
	datagram() bool
	remote() string
}

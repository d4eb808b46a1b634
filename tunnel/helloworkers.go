package tunnel

import (
	"net/netip"
	"runtime"

	"golang.zx2c4.com/wireguard/conn"

	"github.com/current-vpn/current/session"
)

// Hello workers: the HPKE open of a new sealed hello (50 to 110 µs with
// X-Wing) runs off the UDP readers. A reader carries the records of every
// peer already up; opening a restart storm's hellos inline made those
// records wait behind ten thousand opens in the same socket buffer, long
// enough for the peers' liveness rule (silentAfter) to count their
// sessions dead and resume them again (bench/README.md, "Restart storm").
//
// The reader keeps what costs no cryptography: the cookie check,
// reassembly, hello key requests, the copies of hellos opened before
// (sealed.go, a hash and a lookup) and the host's token of a new hello,
// so that one host cannot fill the queue beyond its rate. A new hello
// then waits in a bounded queue for a worker, which takes the device's
// token and opens it. When the queue is full the reader opens the hello
// itself, as it did before the workers: refusing it instead (tried, with
// a queue of 512) made a starved hub's storm slower, since a refused
// request waits a whole retransmission interval, where the socket buffer
// had held it for milliseconds (bench/README.md, "Restart storm
// (session 10)").

// helloQueueLen bounds the hellos waiting for a worker: about 5 ms of
// opens for one worker, and a few MiB of datagrams at most.
const helloQueueLen = 512

// helloJob is a complete new sealed hello waiting for a worker.
type helloJob struct {
	src    netip.AddrPort
	ep     conn.Endpoint
	env    []byte   // the envelope, within raws[last]
	raws   [][]byte // every fragment's datagram (copies)
	sender uint32
	hash   [32]byte
}

// helloWorkers is the number of workers for cores: half of them, at
// least one, as for the resumption slots: the opens are bounded by the
// budgets behind them, far below what one core opens.
func helloWorkers(cores int) int { return max(cores/2, 1) }

// helloQueue holds the new sealed hellos waiting for a worker.
type helloQueue chan helloJob

// offer queues j, or reports false when the queue is full and the caller
// must open it (openQueued).
func (q helloQueue) offer(j helloJob) bool {
	select {
	case q <- j:
		return true
	default:
		return false
	}
}

// startHelloWorkers starts the workers of the UDP listener.
func (d *Device) startHelloWorkers() {
	d.helloQ = make(helloQueue, helloQueueLen)
	for range helloWorkers(runtime.GOMAXPROCS(0)) {
		d.goFunc(d.helloWorker)
	}
}

func (d *Device) helloWorker() {
	for {
		select {
		case j := <-d.helloQ:
			d.openQueued(j)
		case <-d.ctx.Done():
			return
		}
	}
}

// openQueued is a worker's part of a sealed hello (or the reader's, when
// the queue is full): its host's token was taken by the reader.
func (d *Device) openQueued(j helloJob) {
	now := d.clock()
	from := j.src.String()
	// A copy that arrived while its original waited in the queue finds
	// the original's route now.
	v, ok := d.classifyCopy(now, hostOf(j.src.Addr()), from, j.hash, false)
	if !ok {
		v = d.openHello(now, from, j.env, j.hash, j.sender, d.cfg.MaxDatagramSize)
	}
	if len(v.answer) > 0 {
		if err := d.udp.bind.Send(v.answer, j.ep); err != nil {
			d.log.Debug("sending hello key", "err", err)
		}
	}
	if v.p != nil {
		d.deliverHello(v.p, j.ep, j.raws, v.opened)
	}
}

// deliverHello hands a hello's fragments, and what the listener opened of
// it, to its peer, as the reader hands a datagram: in a pool buffer, at
// recvAt.
func (d *Device) deliverHello(p *peer, ep conn.Endpoint, raws [][]byte, opened *session.OpenedHello) {
	b := d.buf.pool.get()
	if b == nil {
		d.buf.pool.noBuffer.Add(1)
		if opened != nil {
			opened.Wipe()
		}
		return
	}
	b.pkt = b.arr[recvAt : recvAt+copy(b.arr[recvAt:], raws[0])]
	b.ep, b.frags, b.opened = ep, raws, opened
	pb := getBatch()
	pb.bufs = append(pb.bufs, b)
	// A hello is the owner's (a receive worker would hand it over), so
	// it is queued with a wake-up, not through the workers.
	if n := p.dgrams.push(pb, d.buf.queueLimit()); n > 0 {
		p.stats.dropQueueFull.Add(uint64(n))
	}
}

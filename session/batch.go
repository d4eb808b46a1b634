package session

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/current-vpn/current/session/record"
)

// Parallel runs f(0), ..., f(n-1), possibly on several goroutines at once,
// and returns when every call has returned. The batch calls below hand
// their AEAD work to it; the session itself never starts a goroutine, so
// where the work runs is the caller's choice. nil runs the calls in order
// on the calling goroutine.
type Parallel func(n int, f func(i int))

func (run Parallel) do(n int, f func(i int)) {
	if run == nil {
		for i := range n {
			f(i)
		}
		return
	}
	run(n, f)
}

// batchScratch is the working space of one batch call. It is pooled
// rather than kept per session: an idle session should cost no more than
// its keys and group.
type batchScratch struct {
	seal     []record.SealTicket
	open     []record.OpenTicket
	prepared []bool
	idx      []int
	// The arguments of the call in progress, and the functions handed to
	// Parallel, made once per scratch (a closure made per call would be
	// an allocation per batch).
	out, dsts, ips, ds [][]byte
	sealOne, openOne   func(j int)
}

func newScratch() any {
	sc := new(batchScratch)
	sc.sealOne = func(j int) {
		i := sc.idx[j]
		// Cannot fail: the length was checked and the content type is
		// valid.
		sc.out[i], _ = sc.seal[i].Seal(sc.dsts[i], record.ContentApplicationData, sc.ips[i], 0)
	}
	sc.openOne = func(j int) {
		i := sc.idx[j]
		sc.open[i].Decrypt(sc.ds[i])
	}
	return sc
}

var scratchPool = sync.Pool{New: newScratch}

func getScratch(n int) *batchScratch {
	sc := scratchPool.Get().(*batchScratch)
	if cap(sc.idx) < n {
		sc.seal = make([]record.SealTicket, n)
		sc.open = make([]record.OpenTicket, n)
		sc.prepared = make([]bool, n)
		sc.idx = make([]int, 0, n)
	}
	return sc
}

// put clears every key and buffer reference before pooling.
func (sc *batchScratch) put() {
	clear(sc.seal[:cap(sc.seal)])
	clear(sc.open[:cap(sc.open)])
	sc.idx = sc.idx[:0]
	sc.out, sc.dsts, sc.ips, sc.ds = nil, nil, nil, nil
	scratchPool.Put(sc)
}

// SealPackets seals IP packets for the peer in datagram mode, one record
// each, spreading the AEAD work with run: out[i] becomes the record of
// ips[i], appended to dsts[i] as SealPacketTo appends it (in place when
// laid out for it). Records are numbered in slice order. A packet too
// large for a record gets a nil out[i] (the caller drops it); out, dsts
// and ips must have the same length. A returned error is fatal, as with
// SealPacketTo; packets whose out[i] is set were sealed even then.
//
// The session's state is touched only before and after run, never during
// it, so run may call f concurrently.
func (s *Session) SealPackets(now time.Time, out, dsts, ips [][]byte, run Parallel) error {
	s.now = now
	clear(out)
	if s.phase != phaseEstablished {
		return s.phaseError()
	}
	if s.cfg.Transport != Datagram {
		return fmt.Errorf("%w: SealPackets on a stream session", ErrBadConfig)
	}
	sc := getScratch(len(ips))
	defer sc.put()
	tickets := sc.seal[:len(ips)]
	sealable := sc.idx[:0]
	sc.out, sc.dsts, sc.ips = out, dsts, ips
	var ferr error
	for i, ip := range ips {
		if len(ip) == 0 || len(ip) > record.MaxPlaintext {
			continue
		}
		t, err := s.dg.send.Reserve()
		if err != nil {
			ferr = err
			break
		}
		tickets[i] = t
		sealable = append(sealable, i)
		s.epochBytes += uint64(len(ip))
	}
	sc.idx = sealable
	run.do(len(sealable), sc.sealOne)
	if ferr != nil {
		return s.fail(ferr)
	}
	return s.fail(s.checkPolicy())
}

// errUnread marks the datagrams of a batch after the one that closed the
// session.
var errUnread = fmt.Errorf("%w: the session closed before this datagram was read", ErrDropped)

// Received is the outcome of one datagram of ReceiveDatagrams.
type Received struct {
	// Packet is the IP packet (empty for a keepalive), decrypted in place
	// and aliasing the datagram, when Data is true.
	Packet []byte
	Data   bool
	// Err is nil; or wraps ErrDropped: this datagram was discarded; or
	// is the fatal error ReceiveDatagrams returned, for the datagram that
	// caused it.
	Err error
}

// ReceiveDatagrams is ReceiveDatagram for a batch, in arrival order:
// res[i] is the outcome of ds[i] (res must be as long as ds). The records'
// AEAD work is spread with run; everything else happens in order on the
// calling goroutine, with the result a sequence of ReceiveDatagram calls
// would have, except that a record may be dropped for another reason (a
// replay of a record of the previous epoch, say, is a replay here and an
// unknown epoch there). A returned error is fatal, as with
// ReceiveDatagram: the session is closed, the outcomes of the datagrams
// before the fatal one stand, and the rest are dropped unread; packets
// returned with a fatal error must not be delivered. After a datagram
// that closes the session without error (the peer's Close) the rest are
// dropped unread too.
func (s *Session) ReceiveDatagrams(now time.Time, ds [][]byte, res []Received, run Parallel) error {
	if err := s.receiving(now, Datagram, "ReceiveDatagrams"); err != nil {
		return err
	}
	sc := getScratch(len(ds))
	defer sc.put()
	tickets, prepared := sc.open[:len(ds)], sc.prepared[:len(ds)]
	decrypt := sc.idx[:0]
	for i, d := range ds {
		res[i] = Received{}
		prepared[i] = false
		if len(d) == 0 || d[0] != record.DatagramTypeRecord {
			continue
		}
		t, err := s.dg.recv.Prepare(d, s.mono())
		if err != nil {
			_, _, res[i].Err = s.opened(d, 0, nil, err)
			continue
		}
		tickets[i], prepared[i] = t, true
		decrypt = append(decrypt, i)
	}
	sc.idx, sc.ds = decrypt, ds
	run.do(len(decrypt), sc.openOne)
	for i, d := range ds {
		if res[i].Err != nil {
			continue
		}
		var err error
		if prepared[i] {
			ct, content, oerr := s.dg.recv.Settle(&tickets[i], s.mono())
			res[i].Packet, res[i].Data, err = s.opened(d, ct, content, oerr)
		} else {
			res[i].Packet, res[i].Data, err = s.readDatagram(d)
		}
		if err != nil && !errors.Is(err, ErrDropped) {
			res[i] = Received{Err: err}
			for j := i + 1; j < len(ds); j++ {
				res[j] = Received{Err: errUnread}
			}
			return s.fail(err)
		}
		res[i].Err = err
		if s.phase == phaseClosed {
			// A Close or an Alert: the rest is not read.
			for j := i + 1; j < len(ds); j++ {
				res[j] = Received{Err: errUnread}
			}
			return nil
		}
	}
	return nil
}

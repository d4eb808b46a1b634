package session

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/current-vpn/current/session/record"
)

// Issue 17: no packet may be lost to an epoch update. lossWire carries a
// datagram pair's traffic both ways with a delay of its own for every
// datagram (so datagrams sent close together overtake each other, the
// control messages of an update included), optionally losing control
// datagrams (never data: those must all arrive), and hands what is due to
// the receiver in batches, as the tunnel's owner does.
type lossWire struct {
	tb       testing.TB
	rng      *rand.Rand
	a, b     *Session
	inFlight []lossFlight
	// jitter is the most a datagram is delayed; loseControl the
	// probability that a control datagram (anything Outgoing returned)
	// is lost.
	jitter      time.Duration
	loseControl float64
	// loseConfirm and loseKeepalive lose, of each update, the first
	// EpochKeyUpdate (the control datagram of the side that holds back
	// its switch) and the committer's keepalive (an empty record:
	// DatagramOverhead bytes). oneWay: only a sends data.
	loseConfirm, loseKeepalive bool
	oneWay                     bool
	confirmLost, keepaliveLost map[*Session]bool
	targetedLost               int
	sent                       map[string]bool
	got                        map[string]int
	// drops counts the datagrams the sessions dropped, by reason.
	drops map[string]int
}

type lossFlight struct {
	at   time.Time
	to   *Session
	d    []byte
	data bool
}

func (w *lossWire) post(now time.Time, to *Session, ds [][]byte, data bool) {
	from := w.peer(to)
	for _, d := range ds {
		if !data && w.rng.Float64() < w.loseControl {
			continue
		}
		if !data && w.targeted(from, d) {
			continue
		}
		at := now.Add(time.Duration(w.rng.Int64N(int64(w.jitter) + 1)))
		w.inFlight = append(w.inFlight, lossFlight{at: at, to: to, d: d, data: data})
	}
}

// targeted reports whether d, a control datagram from from, is the
// confirmation or keepalive of this update that the case loses.
func (w *lossWire) targeted(from *Session, d []byte) bool {
	keepalive := len(d) == record.DatagramOverhead && d[0] == record.DatagramTypeRecord
	switch {
	case w.loseKeepalive && keepalive && !w.keepaliveLost[from]:
		w.keepaliveLost[from] = true
		w.targetedLost++
		return true
	case w.loseConfirm && !keepalive && from.holding() && !w.confirmLost[from]:
		w.confirmLost[from] = true
		w.targetedLost++
		return true
	}
	return false
}

// nextUpdate rearms the targeted losses for the update about to start.
func (w *lossWire) nextUpdate() {
	w.confirmLost, w.keepaliveLost = map[*Session]bool{}, map[*Session]bool{}
}

func (w *lossWire) peer(s *Session) *Session {
	if s == w.a {
		return w.b
	}
	return w.a
}

// send seals n packets from s, numbered for the check.
func (w *lossWire) send(now time.Time, s *Session, n int) {
	ips, dsts, out := make([][]byte, n), make([][]byte, n), make([][]byte, n)
	for k := range ips {
		ips[k] = fmt.Appendf(nil, "%p packet %d", s, len(w.sent))
		w.sent[string(ips[k])] = true
	}
	if err := s.SealPackets(now, out, dsts, ips, nil); err != nil {
		w.tb.Fatal(err)
	}
	w.post(now, w.peer(s), out, true)
	w.flushControl(now, s)
}

func (w *lossWire) flushControl(now time.Time, s *Session) {
	w.post(now, w.peer(s), s.Outgoing(), false)
}

// deliver hands each session what is due by now, in arrival order, in
// batches of random size.
func (w *lossWire) deliver(now time.Time) {
	slices.SortStableFunc(w.inFlight, func(x, y lossFlight) int { return x.at.Compare(y.at) })
	n := 0
	for n < len(w.inFlight) && !w.inFlight[n].at.After(now) {
		n++
	}
	due := slices.Clone(w.inFlight[:n])
	w.inFlight = slices.Delete(w.inFlight, 0, n)
	for len(due) > 0 {
		to := due[0].to
		k := 1
		for k < len(due) && k < 1+w.rng.IntN(16) && due[k].to == to {
			k++
		}
		ds := make([][]byte, k)
		for i := range ds {
			ds[i] = due[i].d
		}
		res := make([]Received, k)
		if err := to.ReceiveDatagrams(now, ds, res, nil); err != nil {
			w.tb.Fatalf("ReceiveDatagrams: %v", err)
		}
		for i, rc := range res {
			switch {
			case rc.Err != nil:
				kind := "control"
				if due[i].data {
					kind = "data"
				}
				w.drops[kind+": "+rc.Err.Error()]++
			case rc.Data && len(rc.Packet) > 0:
				w.got[string(rc.Packet)]++
			}
		}
		w.flushControl(now, to)
		due = due[k:]
	}
}

func (w *lossWire) timers(now time.Time) {
	for _, s := range []*Session{w.a, w.b} {
		if t := s.NextTimeout(); !t.IsZero() && !now.Before(t) {
			if err := s.HandleTimeout(now); err != nil {
				w.tb.Fatalf("HandleTimeout: %v", err)
			}
			w.flushControl(now, s)
		}
	}
}

// TestUpdatesLoseNoPackets streams packets both ways through many epoch
// changes, started by either side and sometimes by both at once, with
// every datagram delayed by up to jitter (reordering around every key
// switch), and with control datagrams lost: every packet must arrive
// exactly once, and no data record may be dropped.
func TestUpdatesLoseNoPackets(t *testing.T) {
	for _, c := range []struct {
		name                       string
		jitter                     time.Duration
		loseControl                float64
		loseConfirm, loseKeepalive bool
		oneWay                     bool
	}{
		{name: "reordered", jitter: 3 * time.Millisecond},
		{name: "control lost", loseControl: 0.3},
		{name: "reordered and control lost", jitter: 3 * time.Millisecond, loseControl: 0.3},
		{name: "EpochKeyUpdate lost", jitter: 3 * time.Millisecond, loseConfirm: true},
		{name: "keepalive lost", jitter: 3 * time.Millisecond, loseKeepalive: true},
		// The committer of every other update sends no data: only the
		// retransmitted EpochKeyUpdate and its answer end the hold.
		{name: "keepalive lost, one-way data", jitter: 3 * time.Millisecond, loseKeepalive: true, oneWay: true},
		{name: "both lost, one-way data", jitter: 3 * time.Millisecond, loseConfirm: true, loseKeepalive: true, oneWay: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			id := testSuites[0]
			i, r := newDatagramPair(t, id, newKeys(t, id), newKeys(t, id))
			settle(t, i, r, t0)
			w := &lossWire{tb: t, rng: rand.New(rand.NewPCG(7, uint64(c.jitter)+uint64(c.loseControl*100))), a: i, b: r,
				jitter: c.jitter, loseControl: c.loseControl, loseConfirm: c.loseConfirm, loseKeepalive: c.loseKeepalive,
				oneWay: c.oneWay, sent: map[string]bool{}, got: map[string]int{}, drops: map[string]int{}}
			start := i.Epoch()
			const updates = 40
			now := t0
			tick := time.Millisecond
			for k := 0; k < updates; k++ {
				a := i
				if k%2 == 1 {
					a = r
				}
				w.nextUpdate()
				mustUpdateNow(t, a, now)
				if k%5 == 4 {
					mustUpdateNow(t, w.peer(a), now) // a collision
				}
				w.flushControl(now, a)
				w.flushControl(now, w.peer(a))
				// Traffic until both sides are in the same epoch and
				// neither waits nor holds back, and then for a while
				// longer than the reordering (the next update follows
				// at once, where a real schedule has seconds).
				for n, calm := 0, 0; calm < 20; n++ {
					if i.waiting || r.waiting || i.holding() || r.holding() || i.Epoch() != r.Epoch() {
						calm = 0
					} else {
						calm++
					}
					if n > 60000 {
						t.Fatalf("update %d did not complete: epochs %d %d, waiting %v %v", k, i.Epoch(), r.Epoch(), i.waiting, r.waiting)
					}
					now = now.Add(tick)
					w.send(now, i, 1+w.rng.IntN(3))
					if !c.oneWay {
						w.send(now, r, 1+w.rng.IntN(3))
					}
					w.deliver(now)
					w.timers(now)
				}
			}
			now = now.Add(time.Second)
			w.deliver(now)
			if got := i.Epoch() - start; got < updates*3/4 {
				t.Fatalf("%d epoch changes, want at least %d", got, updates*3/4)
			}
			lost := 0
			for p := range w.sent {
				if w.got[p] != 1 {
					lost++
				}
			}
			for reason, n := range w.drops {
				if reason[:4] == "data" {
					t.Errorf("%d data records dropped: %s", n, reason)
				}
			}
			if (c.loseConfirm || c.loseKeepalive) && w.targetedLost < updates/2 {
				t.Fatalf("only %d confirmations or keepalives lost in %d updates", w.targetedLost, updates)
			}
			if lost > 0 {
				t.Fatalf("%d of %d packets not delivered exactly once across %d epoch changes", lost, len(w.sent), i.Epoch()-start)
			}
			t.Logf("%d packets across %d epoch changes; %d confirmations or keepalives lost; control datagrams dropped: %v", len(w.sent), i.Epoch()-start, w.targetedLost, w.drops)
		})
	}
}

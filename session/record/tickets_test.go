package record

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

// TestTicketsMatchSequential feeds the same hostile stream (reordered,
// duplicated within and across batches, forged, across epoch changes) to
// two receivers: one opens datagram by datagram, the other in batches
// whose decryption runs on several goroutines at once. Both must accept
// exactly the same records with the same contents. Run under -race, it
// also checks that Decrypt shares nothing.
func TestTicketsMatchSequential(t *testing.T) {
	for _, ts := range testSuites {
		t.Run(ts.name, func(t *testing.T) {
			for seed := range uint64(20) {
				checkTicketsMatch(t, ts.suite, seed)
			}
		})
	}
}

func checkTicketsMatch(t *testing.T, s Suite, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	cfg := Config{GraceRecords: 50}
	snd := NewDatagramSender(9, cfg)
	seqRcv := NewDatagramReceiver(9, cfg)
	batRcv := NewDatagramReceiver(9, cfg)
	install := func(epoch uint64) {
		sk, _ := keyPair(t, s, epoch, 'd')
		_, rk1 := keyPair(t, s, epoch, 'd')
		_, rk2 := keyPair(t, s, epoch, 'd')
		if err := snd.SetKeys(sk); err != nil {
			t.Fatal(err)
		}
		if err := seqRcv.SetKeys(rk1); err != nil {
			t.Fatal(err)
		}
		if err := batRcv.SetKeys(rk2); err != nil {
			t.Fatal(err)
		}
	}
	install(1)
	var pool [][]byte // everything sent so far, for replays
	now := time.Duration(0)
	for round := range 30 {
		if round%10 == 9 {
			install(uint64(round/10 + 2))
		}
		var batch [][]byte
		for range 1 + rng.IntN(64) {
			var d []byte
			switch r := rng.IntN(10); {
			case r < 6 || len(pool) == 0:
				// A fresh record, sealed through a ticket like the data
				// path does.
				tk, err := snd.Reserve()
				if err != nil {
					t.Fatal(err)
				}
				payload := fmt.Appendf(nil, "seed %d round %d %d", seed, round, rng.Uint32())
				d, err = tk.Seal(nil, ContentApplicationData, payload, rng.IntN(3))
				if err != nil {
					t.Fatal(err)
				}
				pool = append(pool, d)
			case r < 8:
				d = pool[rng.IntN(len(pool))] // a replay
			case r < 9 && len(batch) > 0:
				d = batch[rng.IntN(len(batch))] // a duplicate in the batch
			default:
				d = bytes.Clone(pool[rng.IntN(len(pool))])
				d[DatagramHeaderLen+rng.IntN(len(d)-DatagramHeaderLen)] ^= 0x40 // a forgery
			}
			batch = append(batch, d)
		}
		rng.Shuffle(len(batch), func(i, j int) { batch[i], batch[j] = batch[j], batch[i] })
		now += time.Millisecond

		var want []string
		for _, d := range batch {
			ct, c, err := seqRcv.Open(bytes.Clone(d), now)
			want = append(want, outcome(ct, c, err))
		}
		got := openBatch(batRcv, batch, now)
		for i, e := range []*recvEpoch{&seqRcv.slots[0], &seqRcv.slots[1]} {
			if b := &batRcv.slots[i]; e.accepted != b.accepted || e.failures != b.failures {
				t.Fatalf("seed %d round %d: slot %d accepted/failures %d/%d sequentially, %d/%d in batches", seed, round, i, e.accepted, e.failures, b.accepted, b.failures)
			}
		}
		for i := range want {
			if want[i] != got[i] {
				d := batch[i]
				t.Fatalf("seed %d round %d datagram %d (epoch %d seq %d): sequential %s, batch %s", seed, round, i, d[offEpoch+1], d[offSeq+7], want[i], got[i])
			}
		}
	}
}

// openBatch opens copies of ds the way a data path with workers does:
// Prepare in order, Decrypt on several goroutines, Settle in order.
func openBatch(r *DatagramReceiver, ds [][]byte, now time.Duration) []string {
	bufs := make([][]byte, len(ds))
	tickets := make([]OpenTicket, len(ds))
	errs := make([]error, len(ds))
	for i, d := range ds {
		bufs[i] = bytes.Clone(d)
		tickets[i], errs[i] = r.Prepare(bufs[i], now)
	}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := w; i < len(ds); i += 4 {
				if errs[i] == nil {
					tickets[i].Decrypt(bufs[i])
				}
			}
		})
	}
	wg.Wait()
	out := make([]string, len(ds))
	for i := range ds {
		if errs[i] != nil {
			out[i] = outcome(0, nil, errs[i])
			continue
		}
		ct, c, err := r.Settle(&tickets[i], now)
		out[i] = outcome(ct, c, err)
	}
	return out
}

// outcome is what must be the same either way: accepted with a content,
// or dropped. Why a record was dropped may differ: a replay of the
// previous epoch's record is rejected by the window at Prepare, before
// records later in the batch end the previous epoch's grace period, after
// which a sequential Open finds no epoch for it.
func outcome(ct ContentType, c []byte, err error) string {
	if err != nil {
		if !isDrop(err) {
			return "unexpected error: " + err.Error()
		}
		return "dropped"
	}
	return fmt.Sprintf("ok %d %q", ct, c)
}

func isDrop(err error) bool {
	for _, kind := range []error{ErrReplay, ErrTooOld, ErrBadRecordMAC, ErrUnknownEpoch, ErrKeyExhausted} {
		if errors.Is(err, kind) {
			return true
		}
	}
	return false
}

// TestSealTicketsOrder checks that tickets number records in the order
// they were reserved, whatever order they are sealed in, and that a
// receiver accepts them all.
func TestSealTicketsOrder(t *testing.T) {
	s := testSuites[0].suite
	snd, rcv := datagramPair(t, s, 1, 3, Config{})
	tickets := make([]SealTicket, 8)
	for i := range tickets {
		var err error
		if tickets[i], err = snd.Reserve(); err != nil {
			t.Fatal(err)
		}
	}
	recs := make([][]byte, len(tickets))
	for i := len(tickets) - 1; i >= 0; i-- {
		var err error
		if recs[i], err = tickets[i].Seal(nil, ContentApplicationData, []byte{byte(i)}, 0); err != nil {
			t.Fatal(err)
		}
	}
	for i, d := range recs {
		if seq := d[offSeq+7]; int(seq) != i {
			t.Fatalf("record %d has sequence number %d", i, seq)
		}
		c, err := open(rcv, d, 0)
		if err != nil || !bytes.Equal(c, []byte{byte(i)}) {
			t.Fatalf("record %d: %q, %v", i, c, err)
		}
	}
	if snd.Sequence() != uint64(len(tickets)) {
		t.Fatalf("sequence %d after %d tickets", snd.Sequence(), len(tickets))
	}
}

// FuzzOpenBatch: whatever the datagrams, opening them as one batch
// (Prepare, Decrypt, Settle) accepts exactly what opening them one by one
// accepts, with the same contents and the same forgery counts.
func FuzzOpenBatch(f *testing.F) {
	_, senders := fuzzDatagramSetup(f)
	s1, s2 := senders[1], senders[2]
	d1, _ := s1.Seal(nil, ContentApplicationData, []byte("old epoch"), 0)
	d2, _ := s2.Seal(nil, ContentApplicationData, []byte("new epoch"), 0)
	d3, _ := s2.Seal(nil, ContentHandshake, []byte("EpochKeyUpdate"), 9)
	forged := bytes.Clone(d2)
	forged[len(forged)-3] ^= 0x10
	f.Add(frame(d1, d2, d2, d3, d1))
	f.Add(frame(forged, d2, forged))
	f.Add(frame(d2[:20], d3, d3))

	f.Fuzz(func(t *testing.T, data []byte) {
		seqRcv, _ := fuzzDatagramSetup(t)
		batRcv, _ := fuzzDatagramSetup(t)
		var ds [][]byte
		for len(data) >= 2 && len(ds) < 128 {
			n := min(int(binary.BigEndian.Uint16(data)), len(data)-2)
			ds = append(ds, data[2:2+n])
			data = data[2+n:]
		}
		var want []string
		for _, d := range ds {
			ct, c, err := seqRcv.Open(bytes.Clone(d), 0)
			want = append(want, outcome(ct, c, err))
		}
		got := openBatch(batRcv, ds, 0)
		for i := range want {
			if want[i] != got[i] {
				t.Fatalf("datagram %d: one by one %s, as a batch %s", i, want[i], got[i])
			}
		}
		for i := range seqRcv.slots {
			a, b := &seqRcv.slots[i], &batRcv.slots[i]
			if a.accepted != b.accepted || a.failures != b.failures {
				t.Fatalf("slot %d: accepted/failures %d/%d one by one, %d/%d as a batch", i, a.accepted, a.failures, b.accepted, b.failures)
			}
		}
	})
}

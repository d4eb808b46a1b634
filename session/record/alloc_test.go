package record

import (
	"testing"
	"time"
)

// Steady-state sealing and opening must not allocate: every IP packet goes
// through them. AllocsPerRun is deterministic, unlike timing.
func TestZeroAllocs(t *testing.T) {
	const runs = 200
	for _, tc := range testSuites {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.suite
			snd, rcv := datagramPair(t, s, 1, 1, Config{})
			buf := make([]byte, 2048)
			payload := buf[DatagramHeaderLen : DatagramHeaderLen+1400]
			if a := testing.AllocsPerRun(runs, func() {
				if _, err := snd.Seal(buf[:0], ContentApplicationData, payload, 0); err != nil {
					t.Fatal(err)
				}
			}); a != 0 {
				t.Errorf("DatagramSender.Seal: %v allocs", a)
			}

			// AllocsPerRun calls the function runs+1 times.
			ds := make([][]byte, runs+1)
			for i := range ds {
				ds[i] = seal(t, snd, payload)
			}
			i := 0
			if a := testing.AllocsPerRun(runs, func() {
				if _, _, err := rcv.Open(ds[i], time.Duration(i)); err != nil {
					t.Fatal(err)
				}
				i++
			}); a != 0 {
				t.Errorf("DatagramReceiver.Open: %v allocs", a)
			}
			// Drops are counted by the session; they must not allocate either.
			replayed := seal(t, snd, payload)
			if _, _, err := rcv.Open(append([]byte(nil), replayed...), 0); err != nil {
				t.Fatal(err)
			}
			forged := seal(t, snd, payload)
			forged[20] ^= 1
			if a := testing.AllocsPerRun(runs, func() {
				if _, _, err := rcv.Open(replayed, 0); err != ErrReplay {
					t.Fatal(err)
				}
				if _, _, err := rcv.Open(forged, 0); err != ErrBadRecordMAC {
					t.Fatal(err)
				}
			}); a != 0 {
				t.Errorf("rejecting datagrams: %v allocs", a)
			}

			w, _ := streamPair(t, s, 1)
			rec := make([]byte, 0, 2048)
			if a := testing.AllocsPerRun(runs, func() {
				var err error
				rec, err = w.SealRecord(rec[:0], ContentApplicationData, payload, 0)
				if err != nil {
					t.Fatal(err)
				}
			}); a != 0 {
				t.Errorf("StreamWriter.SealRecord: %v allocs", a)
			}

			w2, r2 := streamPair(t, s, 2)
			var wire []byte
			for i := 0; i <= runs; i++ {
				wire, _ = w2.SealRecord(wire, ContentApplicationData, payload, 0)
			}
			recLen := len(wire) / (runs + 1)
			j := 0
			if a := testing.AllocsPerRun(runs, func() {
				r2.Feed(wire[j*recLen : (j+1)*recLen])
				if _, _, err := r2.Next(); err != nil {
					t.Fatal(err)
				}
				j++
			}); a != 0 {
				t.Errorf("StreamReader Feed+Next: %v allocs", a)
			}
		})
	}
}

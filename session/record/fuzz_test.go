package record

import (
	"bytes"
	"crypto"
	"encoding/binary"
	"testing"
	"time"
)

// The fuzz oracles rely on AEAD sealing being deterministic: a record that
// the layer accepts must be byte-identical to what our own sender produces
// for the same content, padding, epoch and sequence number. Anything else
// accepted would be a forgery.

var fuzzSuite = Suite{AES128GCM, crypto.SHA256}

const fuzzIndex = 7

// frame prefixes each datagram with a two-byte length so one fuzz input can
// carry a sequence of datagrams and exercise the window and epoch state.
func frame(ds ...[]byte) []byte {
	var out []byte
	for _, d := range ds {
		out = binary.BigEndian.AppendUint16(out, uint16(len(d)))
		out = append(out, d...)
	}
	return out
}

// fuzzDatagramSetup returns a receiver holding epochs 1 (previous) and 2
// (current), and senders with the same keys for both.
func fuzzDatagramSetup(t testing.TB) (*DatagramReceiver, map[uint16]*DatagramSender) {
	rcv := NewDatagramReceiver(fuzzIndex, Config{GracePeriod: 5 * time.Second})
	senders := map[uint16]*DatagramSender{}
	for _, e := range []uint64{1, 2} {
		sk, rk := keyPair(t, fuzzSuite, e, 'f')
		snd := NewDatagramSender(fuzzIndex, Config{})
		if err := snd.SetKeys(sk); err != nil {
			t.Fatal(err)
		}
		if err := rcv.SetKeys(rk); err != nil {
			t.Fatal(err)
		}
		senders[uint16(e)] = snd
	}
	return rcv, senders
}

func FuzzOpenDatagram(f *testing.F) {
	_, senders := fuzzDatagramSetup(f)
	s1, s2 := senders[1], senders[2]
	d1, _ := s1.Seal(nil, ContentApplicationData, []byte("old epoch"), 0)
	d2, _ := s2.Seal(nil, ContentApplicationData, []byte("new epoch"), 0)
	d3, _ := s2.Seal(nil, ContentHandshake, []byte("EpochKeyUpdate"), 9)
	d4, _ := s2.Seal(nil, ContentApplicationData, nil, 0)
	s2.use.seq = 40000
	d5, _ := s2.Seal(nil, ContentAlert, []byte{1, 0}, 0)
	forged := bytes.Clone(d2)
	forged[len(forged)-3] ^= 0x10
	f.Add(frame(d1))
	f.Add(frame(d2, d1, d3, d2, d4))
	f.Add(frame(d5, d3, d1))
	f.Add(frame(forged, d2))
	f.Add(frame(d2[:20], d3[:DatagramHeaderLen]))

	f.Fuzz(func(t *testing.T, data []byte) {
		rcv, senders := fuzzDatagramSetup(t)
		now := time.Duration(0)
		for len(data) >= 2 {
			n := min(int(binary.BigEndian.Uint16(data)), len(data)-2)
			d := data[2 : 2+n]
			data = data[2+n:]
			orig := bytes.Clone(d)
			before := snapshot(rcv)
			ct, content, err := rcv.Open(d, now)
			now += time.Second
			if err != nil {
				after := snapshot(rcv)
				if after.windows != before.windows || after.accepted != before.accepted {
					t.Fatalf("rejected datagram (%v) changed a replay window", err)
				}
				continue
			}
			wire := binary.BigEndian.Uint16(orig[offEpoch:])
			snd := senders[wire]
			if snd == nil {
				t.Fatalf("accepted a datagram for epoch bits %d", wire)
			}
			snd.use.seq = binary.BigEndian.Uint64(orig[offSeq:])
			snd.use.limit = MaxRecords
			padding := len(orig) - DatagramOverhead - len(content)
			again, err := snd.Seal(nil, ct, content, padding)
			if err != nil || !bytes.Equal(again, orig) {
				t.Fatalf("accepted a datagram we did not send:\n%x\n%x (%v)", orig, again, err)
			}
			if _, _, err := rcv.Open(bytes.Clone(orig), now); err != ErrReplay {
				t.Fatalf("replay of an accepted datagram: %v", err)
			}
		}
	})
}

func fuzzStreamSetup(t testing.TB) (*StreamWriter, *StreamReader) {
	wk, rk := keyPair(t, fuzzSuite, 1, 'g')
	w, r := NewStreamWriter(Config{}), NewStreamReader()
	if err := w.SetKeys(wk); err != nil {
		t.Fatal(err)
	}
	if err := r.SetKeys(rk); err != nil {
		t.Fatal(err)
	}
	return w, r
}

func FuzzParseStreamRecord(f *testing.F) {
	w, _ := fuzzStreamSetup(f)
	var wire []byte
	wire, _ = w.SealRecord(wire, ContentApplicationData, []byte("first"), 0)
	wire, _ = w.SealRecord(wire, ContentHandshake, []byte("EpochKeyUpdate"), 3)
	wire, _ = w.SealRecord(wire, ContentApplicationData, nil, 0)
	wire, _ = w.SealRecord(wire, ContentAlert, []byte{1, 0}, 20)
	f.Add(wire, uint16(0))
	f.Add(wire, uint16(1))
	f.Add(wire[:30], uint16(7))
	f.Add([]byte{23, 3, 3, 0x41, 0x01}, uint16(0))
	bad := bytes.Clone(wire)
	bad[12] ^= 1
	f.Add(bad, uint16(3))

	f.Fuzz(func(t *testing.T, data []byte, chunk uint16) {
		w, r := fuzzStreamSetup(t)
		step := len(data)
		if chunk != 0 {
			step = int(chunk)
		}
		fed, off := 0, 0
		for {
			took := 0
			if fed < len(data) {
				took = r.Feed(data[fed:min(len(data), fed+step)])
				fed += took
			}
			progressed := false
			for {
				ct, content, err := r.Next()
				if err == ErrNeedMore {
					break
				}
				if err != nil {
					if _, _, again := r.Next(); again != err || r.keys != nil {
						t.Fatalf("fatal error %v did not stick (%v)", err, again)
					}
					return
				}
				progressed = true
				n := StreamHeaderLen + int(binary.BigEndian.Uint16(data[off+3:]))
				rec := data[off : off+n]
				off += n
				w.use.seq = r.seq - 1
				padding := n - StreamOverhead - len(content)
				again, err := w.SealRecord(nil, ct, content, padding)
				if err != nil || !bytes.Equal(again, rec) {
					t.Fatalf("accepted a record we did not send:\n%x\n%x (%v)", rec, again, err)
				}
			}
			if !progressed && took == 0 {
				if fed < len(data) {
					t.Fatal("buffer full without a complete record")
				}
				return
			}
		}
	})
}

package tunnel

import (
	"crypto/rand"
	"encoding/binary"
	mrand "math/rand/v2"
	"slices"
	"time"

	"github.com/current-vpn/current/session"
	"github.com/current-vpn/current/session/record"
)

// The UDP junk attack of TestAttackHelper.

// udpJunk sends, round robin over the ports, spec.Rate slots a second of
// ten kinds of junk: six kinds of malformed or misaddressed datagrams
// (each is refused on its own), a ClientHello signed by a key B does not
// pin (all its fragments), and three kinds of genuine tunnel records
// captured on B's link to A: resent as they were (the replay window
// refuses them), with a bit flipped after the header (same sequence
// number: refused as replays), and with a fresh sequence number and a
// flipped bit (refused by the AEAD). No cookie is ever echoed.
func udpJunk(spec attackSpec) (attackResult, error) {
	deadline := time.Now().Add(spec.Duration)
	stranger, err := readAttackFile(spec.Stranger)
	if err != nil {
		return nil, err
	}
	recs, err := readAttackFile(spec.Records)
	if err != nil {
		return nil, err
	}
	flows, err := openFlows(spec.Target, spec.Ports)
	if err != nil {
		return nil, err
	}
	defer closeFlows(flows)
	var seed [32]byte
	rand.Read(seed[:])
	rng := mrand.New(mrand.NewChaCha8(seed))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	index := func() uint32 { return rng.Uint32() | 1 } // never 0, and 1 in 2^31 to hit B's
	res := attackResult{}
	slots := attackPaced(deadline, spec.Rate, func(i int) bool {
		f := flows[i%len(flows)]
		var ds [][]byte
		switch kind := i % 10; kind {
		case 0: // anything
			ds = [][]byte{random(1 + rng.IntN(1400))}
		case 1: // a record for a receiver index nobody has
			d := []byte{record.DatagramTypeRecord, byte(rng.Uint32()), byte(rng.Uint32())}
			d = binary.BigEndian.AppendUint32(d, index())
			d = binary.BigEndian.AppendUint64(d, rng.Uint64N(1<<62))
			ds = [][]byte{append(d, random(record.DatagramOverhead+rng.IntN(1200))...)}
		case 2: // a ClientHello-shaped datagram whose fragment is malformed
			var frag []byte
			switch rng.IntN(3) {
			case 0: // no data
				frag = controlFragment(rng.Uint32(), 100, 0, nil)
			case 1: // beyond total_length
				frag = controlFragment(rng.Uint32(), 100, 90, random(20))
			default: // total_length 0
				frag = controlFragment(rng.Uint32(), 0, 0, random(20))
			}
			ds = [][]byte{controlDatagram(index(), nil, frag)}
		case 3: // a control datagram for a receiver index nobody has
			d := controlDatagram(index(), nil, controlFragment(0, 64, 0, random(64)))
			binary.BigEndian.PutUint32(d[5:], index())
			ds = [][]byte{d}
		case 4: // a CookieChallenge for an index nobody has
			d := []byte{session.DatagramCookie}
			d = binary.BigEndian.AppendUint32(d, index())
			ds = [][]byte{append(append(d, 24), random(24)...)}
		case 5: // a complete "ClientHello" that is no control envelope
			n := 16 + rng.IntN(1000)
			ds = [][]byte{controlDatagram(index(), nil, controlFragment(rng.Uint32(), uint32(n), 0, random(n)))}
		case 6:
			ds = stranger
			res["stranger_hellos"]++
		case 7, 8:
			ds = [][]byte{recs[rng.IntN(len(recs))]}
			res["replayed"]++
		case 9:
			d := slices.Clone(recs[rng.IntN(len(recs))])
			if i%20 == 9 {
				binary.BigEndian.PutUint64(d[7:], 1<<40+rng.Uint64N(1<<60))
				res["forged"]++
			} else {
				res["flipped"]++
			}
			p := record.DatagramHeaderLen + rng.IntN(len(d)-record.DatagramHeaderLen)
			d[p] ^= 1 << rng.IntN(8)
			ds = [][]byte{d}
		}
		if i%10 < 6 {
			res["junk"]++
		}
		for _, d := range ds {
			res["bytes"] += f.send(d)
			res["datagrams"]++
		}
		return true
	})
	res["slots"] = int64(slots)
	time.Sleep(200 * time.Millisecond)
	flowTotals(flows, res)
	return res, nil
}

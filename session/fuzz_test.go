package session

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

// Fuzz targets for every control decoder (FuzzDecodeControl, in
// messages_test.go, covers the envelope) and for the state machine.

func FuzzControlDatagramHeader(f *testing.F) {
	f.Add([]byte{DatagramHandshake, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, 0, 1})
	f.Add([]byte{DatagramHandshake, 0, 0, 0, 1, 0, 0, 0, 2, 3, 1, 2, 3})
	f.Fuzz(func(t *testing.T, d []byte) {
		sender, receiver, cookie, frag, ok := parsePlainHeader(d)
		if !ok {
			return
		}
		b := []byte{DatagramHandshake}
		b = binary.BigEndian.AppendUint32(b, sender)
		b = binary.BigEndian.AppendUint32(b, receiver)
		b = append(b, byte(len(cookie)))
		b = append(append(b, cookie...), frag...)
		if !bytes.Equal(b, d) || len(cookie) > maxCookieLen {
			t.Fatalf("header does not round-trip")
		}
	})
}

func FuzzFragmentHeader(f *testing.F) {
	f.Add(append(appendFragHeader(nil, 1, 3, 0), 1, 2, 3))
	f.Add(append(appendFragHeader(nil, 7, 1<<20, 1<<20-1), 9))
	f.Add(appendFragHeader(nil, 0, 0, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, total, off, data, ok := parseFragment(b)
		if !ok {
			return
		}
		if total < 1 || total > maxControlLen+7 || off < 0 || len(data) == 0 || off+len(data) > total {
			t.Fatalf("accepted fragment out of bounds: total %d off %d len %d", total, off, len(data))
		}
		if !bytes.Equal(append(appendFragHeader(nil, id, total, off), data...), b) {
			t.Fatal("fragment does not round-trip")
		}
		// The reassembler takes any accepted fragment within its bounds.
		var r reassembler
		env, err := r.add(t0, reasmKey{id: id}, total, off, data, DefaultReassemblyBytes)
		if err != nil && !errors.Is(err, ErrDropped) {
			t.Fatal(err)
		}
		if env != nil && len(env) != total {
			t.Fatal("reassembled the wrong length")
		}
		if r.bytes > DefaultReassemblyBytes || len(r.m) > maxReassembly {
			t.Fatal("reassembly bounds exceeded")
		}
	})
}

func FuzzCookieChallenge(f *testing.F) {
	jar, err := NewCookieJar(CookieJarConfig{Rand: newSeeded(5)})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(jar.challenge(t0, []byte{1, 2, 3}, 42))
	f.Add([]byte{DatagramCookie, 0, 0, 0, 1, 1, 9})
	f.Fuzz(func(t *testing.T, d []byte) {
		receiver, cookie, ok := parseCookieChallenge(d)
		if !ok {
			return
		}
		b := binary.BigEndian.AppendUint32([]byte{DatagramCookie}, receiver)
		b = append(append(b, byte(len(cookie))), cookie...)
		if !bytes.Equal(b, d) || len(cookie) == 0 {
			t.Fatal("challenge does not round-trip")
		}
		// A forged cookie never validates.
		if jar.valid(t0, []byte{1, 2, 3}, cookie) && !bytes.Equal(d, jar.challenge(t0, []byte{1, 2, 3}, receiver)) {
			t.Fatal("forged cookie accepted")
		}
	})
}

func FuzzParseDatagram(f *testing.F) {
	jar, err := NewCookieJar(CookieJarConfig{Rand: newSeeded(6)})
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte{DatagramHandshake, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, 0, 1})
	f.Add([]byte{DatagramCookie, 0, 0, 0, 1, 1, 9})
	f.Add(append([]byte{0x80, 0, 1, 0, 0, 0, 9}, make([]byte, 40)...))
	f.Fuzz(func(t *testing.T, d []byte) {
		info, ok := ParseDatagram(d)
		if ok && info.Type != d[0] {
			t.Fatal("type mismatch")
		}
		adm, reply := jar.Admit(t0, []byte{9}, d)
		if adm != AdmitDrop && (!ok || info.Type != DatagramHandshake || info.Receiver != 0) {
			t.Fatalf("admitted a datagram that is no initiation: %d", adm)
		}
		if adm == AdmitChallenge {
			if r, _, ok := parseCookieChallenge(reply); !ok || r != info.Sender {
				t.Fatal("bad challenge")
			}
		}
	})
}

// fuzzSessions are built once per fuzzing process and fed every input:
// a responder waiting for a ClientHello, an initiator waiting for its
// ServerHello, an initiator resuming the established pair's group and
// the established pair. The waiting ones are replaced (cheaply: at most a
// self-update, no handshake) when an input moved them on or closed them;
// the established pair must survive every input unchanged, since no
// input can be authentic for it.
type fuzzSessions struct {
	ik, rk         keyPair
	resp, init     *Session
	resum          *Session
	estI, estR     *Session
	epochI, epochR uint64
	stateI         []byte
}

// fuzzResumeIndex is the resuming initiator's index, so that seeds can
// address it.
const fuzzResumeIndex = 0x5e55

func (fs *fuzzSessions) refresh(tb testing.TB) {
	id := testSuites[0]
	if fs.resp == nil || fs.resp.phase != phaseWaitHello {
		_, fs.resp = newDatagramPair(tb, id, fs.ik, fs.rk)
		fs.resp.Outgoing()
	}
	if fs.init == nil || fs.init.phase != phaseWaitHello {
		fs.init, _ = newDatagramPair(tb, id, fs.ik, fs.rk)
		fs.init.Outgoing()
	}
	if fs.resum == nil || fs.resum.phase != phaseWaitHello || !fs.resum.res.active {
		s, err := New(Config{Role: Initiator, Suite: id, SigningKey: fs.ik.priv, PeerPublicKey: fs.rk.pub,
			Transport: Datagram, Resume: fs.stateI, LocalIndex: fuzzResumeIndex, PeerIndex: fs.estR.LocalIndex()})
		if err != nil {
			tb.Fatal(err)
		}
		if err := s.Start(t0); err != nil {
			tb.Fatal(err)
		}
		s.Outgoing()
		fs.resum = s
	}
}

// FuzzHandleDatagram feeds arbitrary datagrams to long-lived sessions.
// Invariants: no panic; the established pair stays established in the
// same epoch, delivers no packet and answers nothing but, once per
// distinct input, a ResumptionReject; a resuming initiator gives up only
// on a reject of its own request (or a message that moves it on); timers
// fire without error.
func FuzzHandleDatagram(f *testing.F) {
	id := testSuites[0]
	fs := &fuzzSessions{ik: newKeys(f, id), rk: newKeys(f, id)}
	fs.estI, fs.estR = newDatagramPair(f, id, fs.ik, fs.rk)
	settle(f, fs.estI, fs.estR, t0)
	fs.epochI, fs.epochR = fs.estI.Epoch(), fs.estR.Epoch()
	var err error
	if fs.stateI, err = fs.estI.State(); err != nil {
		f.Fatal(err)
	}
	fs.refresh(f)

	// Seeds from another pair of the same keys: real ClientHello,
	// ServerHello, commit, packet and close datagrams.
	i, r := newDatagramPair(f, id, fs.ik, fs.rk)
	for _, d := range i.Outgoing() {
		f.Add(bytes.Clone(d))
		_ = r.HandleDatagram(t0, d)
	}
	for _, d := range r.Outgoing() {
		f.Add(bytes.Clone(d))
		_ = i.HandleDatagram(t0, d)
	}
	_ = i.Update(t0)
	_ = i.SendPacket(t0, []byte{0x45, 0, 0, 20})
	for _, d := range i.Outgoing() {
		f.Add(bytes.Clone(d))
	}
	state, _ := i.State()
	res, _ := New(Config{Role: Initiator, Suite: id, SigningKey: fs.ik.priv, PeerPublicKey: fs.rk.pub,
		Transport: Datagram, Resume: state, PeerIndex: r.LocalIndex()})
	_ = res.Start(t0)
	for _, d := range res.Outgoing() {
		f.Add(d)
	}
	// The peer's request crossing the resuming initiator's (same group
	// and epoch), and rejects of its request: the real one and a forgery.
	stateR, _ := fs.estR.State()
	cross, _ := New(Config{Role: Initiator, Suite: id, SigningKey: fs.rk.priv, PeerPublicKey: fs.ik.pub,
		Transport: Datagram, Resume: stateR, LocalIndex: fs.estR.LocalIndex(), PeerIndex: fuzzResumeIndex})
	_ = cross.Start(t0)
	for _, d := range cross.Outgoing() {
		f.Add(d)
	}
	f.Add(rejectDatagram(f, fs.estR.LocalIndex(), fuzzResumeIndex, fs.resum.res.ours))
	f.Add(rejectDatagram(f, fs.estR.LocalIndex(), fuzzResumeIndex, [32]byte{1}))
	f.Add([]byte{DatagramCookie, 0, 0, 0, 1, 1, 9})
	f.Add([]byte{DatagramHandshake, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, 0, 1})

	f.Fuzz(func(t *testing.T, d []byte) {
		fs.refresh(t)
		ours := fs.resum.res.ours
		for _, s := range []*Session{fs.resp, fs.init, fs.resum, fs.estI, fs.estR} {
			_ = s.HandleDatagram(t0, bytes.Clone(d))
		}
		// The waiting initiators may have followed a cookie challenge.
		fs.init.Outgoing()
		fs.resum.Outgoing()
		if !fs.resum.res.active && fs.resum.phase == phaseWaitHello {
			if m := decodePlain(d); m != nil {
				if rj, ok := m.(*ResumptionReject); ok && rj.RequestHash != ours {
					t.Fatal("a reject of another request ended the resumption")
				}
			}
		}
		if fs.estI.Epoch() != fs.epochI || fs.estR.Epoch() != fs.epochR || !fs.estI.Established() || !fs.estR.Established() {
			t.Fatalf("established pair changed: epochs %d %d", fs.estI.Epoch(), fs.estR.Epoch())
		}
		if len(fs.estI.Packets())+len(fs.estR.Packets()) != 0 {
			t.Fatal("forged packet delivered")
		}
		for _, s := range []*Session{fs.estI, fs.estR} {
			for _, out := range s.Outgoing() {
				if _, ok := decodePlain(out).(*ResumptionReject); !ok {
					t.Fatal("established pair answered a forgery with something else than a ResumptionReject")
				}
			}
			// The same input again gets nothing at all.
			_ = s.HandleDatagram(t0, bytes.Clone(d))
			if out := len(s.Outgoing()); out != 0 {
				t.Fatalf("established pair answered a repeated input with %d datagrams", out)
			}
		}
		_ = fs.resp.HandleTimeout(t0.Add(time.Second))
		fs.resp.Outgoing()
	})
}

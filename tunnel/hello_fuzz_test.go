package tunnel

import (
	"bytes"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/current-vpn/current/session"
)

// FuzzHelloStream feeds arbitrary first bytes of a TCP connection to the
// accepter's parser: it must never panic or read past its bound, and an
// envelope it returns must be one it read, in records of its own.
func FuzzHelloStream(f *testing.F) {
	k, peer := newKeys(f, testSuite), newKeys(f, testSuite)
	good := helloBytes(f, testSuite, k, peer.pub, true)
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(helloBytes(f, testSuite, k, peer.pub, false))
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"))
	f.Add([]byte{22, 3, 3, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		hs := &helloStream{r: bytes.NewReader(data)}
		for range 3 {
			_, env, err := hs.next()
			if err != nil {
				return
			}
			if hs.total > maxHelloLen || hs.total > len(data) {
				t.Fatalf("read %d bytes of %d", hs.total, len(data))
			}
			if env != nil && !bytes.Contains(data, env[:min(len(env), maxPlainFragment)]) {
				t.Fatalf("an envelope that is not in the input")
			}
		}
	})
}

// FuzzHelloAssembler feeds arbitrary ClientHello fragments from a few
// sources: the budget holds whatever arrives, and a completed message is
// exactly its total length.
func FuzzHelloAssembler(f *testing.F) {
	f.Add([]byte{0, 0, 1, 0, 0, 0, 0, 0x10, 0, 0, 0, 0, 0, 0xaa, 0xbb})
	f.Fuzz(func(t *testing.T, in []byte) {
		a := newHelloAssembler()
		t0 := time.Unix(1000, 0)
		// Each record of in: src byte, sender byte, id byte, total and
		// offset as uint16, length byte, then that many data bytes.
		for len(in) >= 8 {
			src, sender, id := in[0], in[1], in[2]
			total, off := int(in[3])<<8|int(in[4]), int(in[5])<<8|int(in[6])
			n := min(int(in[7]), len(in)-8)
			data := in[8 : 8+n]
			in = in[8+n:]
			d := fragment(uint32(sender), uint32(id), total, off, data)
			fr, ok := session.ParseHandshakeFragment(d)
			if !ok {
				continue
			}
			ap := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 0, 2, src % 4}), uint16(src))
			v, env, raws := a.add(t0, ap, d, fr)
			if v == asmComplete && (len(env) != total || len(raws) == 0) {
				t.Fatalf("complete message of %d bytes from %d datagrams, total %d", len(env), len(raws), total)
			}
			if b, m := a.held(); b > preHelloBytes || m > preHelloMessages {
				t.Fatalf("held %d bytes in %d messages", b, m)
			}
			for h, u := range a.hosts {
				if u.bytes > preHelloHostBytes || u.msgs > preHelloHostMsgs {
					t.Fatalf("host %s holds %d bytes in %d messages", h, u.bytes, u.msgs)
				}
			}
		}
		a.expire(t0.Add(preHelloLifetime))
		if b, m := a.held(); b != 0 || m != 0 || len(a.hosts) != 0 {
			t.Fatalf("held %d bytes in %d messages, %d hosts after expiry", b, m, len(a.hosts))
		}
	})
}

// FuzzClassifyHello feeds arbitrary reassembled messages to the
// listener's pre-identification step: it must never panic, answer only a
// key request or a hello sealed to an unknown key, never more than three
// times the bytes it got over UDP, and hand nothing to a peer it does
// not have.
func FuzzClassifyHello(f *testing.F) {
	k, stranger := newKeys(f, testSuite), newKeys(f, testSuite)
	log := slog.New(slog.DiscardHandler)
	d := &Device{cfg: Config{Suite: testSuite, PrivateKey: k.priv}, log: log, guard: newGuard(log), byKey: map[string]*peer{}, byGroup: map[string]*peer{}}
	d.opened.life = time.Second
	if err := d.loadHelloKeys(time.Now()); err != nil {
		f.Fatal(err)
	}
	d.ownPub = k.pub
	for _, b := range [][]byte{helloBytes(f, testSuite, stranger, k.pub, true), helloBytes(f, testSuite, stranger, k.pub, false), sealedHelloBytes(f, stranger, d)} {
		if len(b) > plainHeaderLen {
			f.Add(b[plainHeaderLen:])
		}
	}
	f.Add([]byte{0, 2, 0})
	src := netip.MustParseAddrPort("192.0.2.1:1")
	f.Fuzz(func(t *testing.T, env []byte) {
		v := d.classifyHello(time.Now(), src, env, 1, 0)
		if v.p != nil || v.opened != nil {
			t.Fatal("a message handed to a peer the device does not have")
		}
		if len(v.answer) > 0 {
			if typ := session.MsgType(env[2]); typ != session.MsgHelloKeyRequest && typ != session.MsgSealedHello {
				t.Fatalf("a %s answered", typ)
			}
			if n := len(bytes.Join(v.answer, nil)); n > 3*len(env)+64*len(v.answer) {
				t.Fatalf("%d bytes answered for %d", n, len(env))
			}
		}
	})
}

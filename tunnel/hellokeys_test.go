package tunnel

import (
	"bytes"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/current-vpn/current/session"
)

// helloKeyDevice is a Device with nothing but what its hello keys use.
func helloKeyDevice(k keyPair, dir string) *Device {
	return &Device{cfg: Config{Suite: testSuite, PrivateKey: k.priv, StateDir: dir}, log: slog.New(slog.DiscardHandler)}
}

// sealedTo is a ClientHello envelope sealed at now to the hello key hk of
// the responder with public key pub.
func sealedTo(t *testing.T, hk *session.HelloKey, pub []byte, now time.Time) []byte {
	t.Helper()
	key, err := hk.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	k := newKeys(t, testSuite)
	s, err := session.New(session.Config{Role: session.Initiator, Suite: testSuite, SigningKey: k.priv, PeerPublicKey: pub, HideIdentity: true, PeerHelloKey: key})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(now); err != nil {
		t.Fatal(err)
	}
	typ, env, err := (&helloStream{r: bytes.NewReader(bytes.Join(s.Outgoing(), nil))}).next()
	if err != nil || typ != session.MsgSealedHello {
		t.Fatalf("initiator sent a %s (%v)", typ, err)
	}
	return env
}

// The hello keys survive a restart, rotate on schedule with the replaced
// key still opening hellos for one more rotation, and a file others may
// read is refused.
func TestHelloKeysPersistAndRotate(t *testing.T) {
	k, dir := newKeys(t, testSuite), t.TempDir()
	pub := func(d *Device) []byte { return d.hello.ring.Current().PublicKey }
	t0 := time.Now()
	d := helloKeyDevice(k, dir)
	if err := d.loadHelloKeys(t0); err != nil {
		t.Fatal(err)
	}
	first := d.hello.ring.Current()
	path := filepath.Join(dir, helloKeysFile)
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("hello keys file: %v %v", fi, err)
	}
	d.rotateHelloKeyIfDue(t0.Add(time.Hour))
	if string(pub(d)) != string(first.PublicKey) {
		t.Fatal("rotated before it was due")
	}

	// A restart keeps the key.
	d = helloKeyDevice(k, dir)
	if err := d.loadHelloKeys(t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if string(pub(d)) != string(first.PublicKey) {
		t.Fatal("a restart changed the hello key")
	}

	t1 := t0.Add(helloKeyRotation + time.Minute)
	d.rotateHelloKeyIfDue(t1)
	if string(pub(d)) == string(first.PublicKey) {
		t.Fatal("not rotated when due")
	}
	// Restarted after the rotation: both keys are back, and a hello
	// sealed to the replaced one still opens.
	d = helloKeyDevice(k, dir)
	if err := d.loadHelloKeys(t1); err != nil {
		t.Fatal(err)
	}
	if _, err := d.hello.ring.OpenHello(t1, sealedTo(t, first, k.pub, t1)); err != nil {
		t.Fatalf("a hello sealed to the previous key: %v", err)
	}
	// One rotation later it is retired.
	t2 := t1.Add(helloKeyRotation + time.Minute)
	d.rotateHelloKeyIfDue(t2)
	if _, err := d.hello.ring.OpenHello(t2, sealedTo(t, first, k.pub, t2)); !errors.Is(err, session.ErrUnknownHelloKey) {
		t.Fatalf("a hello sealed to a retired key: %v", err)
	}

	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	err := helloKeyDevice(k, dir).loadHelloKeys(t2)
	if err == nil || !strings.Contains(err.Error(), "0600") {
		t.Fatalf("a hello keys file readable by its group: %v", err)
	}
	// A corrupt file is replaced: peers ask for the new key once.
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	d = helloKeyDevice(k, dir)
	if err := d.loadHelloKeys(t2); err != nil || d.hello.ring.Current() == nil {
		t.Fatalf("a corrupt hello keys file: %v", err)
	}
}

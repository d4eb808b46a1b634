package tunnel

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"
)

// fakeTUN is a TUN whose "kernel" side is two channels.
type fakeTUN struct {
	in     chan []byte // packets the kernel sends into the tunnel
	out    chan []byte // packets the device wrote
	closed chan struct{}
	once   sync.Once
}

func newFakeTUN() *fakeTUN {
	return &fakeTUN{in: make(chan []byte, 64), out: make(chan []byte, 1024), closed: make(chan struct{})}
}

func (f *fakeTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	select {
	case p := <-f.in:
		sizes[0] = copy(bufs[0][offset:], p)
		return 1, nil
	case <-f.closed:
		return 0, os.ErrClosed
	}
}

func (f *fakeTUN) Write(bufs [][]byte, offset int) (int, error) {
	for i, b := range bufs {
		select {
		case f.out <- append([]byte(nil), b[offset:]...):
		case <-f.closed:
			return i, os.ErrClosed
		}
	}
	return len(bufs), nil
}

func (f *fakeTUN) BatchSize() int { return 4 }

func (f *fakeTUN) Close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

// expect waits for the next packet the device wrote.
func (f *fakeTUN) expect(t *testing.T, want []byte) {
	t.Helper()
	select {
	case got := <-f.out:
		if string(got) != string(want) {
			t.Fatalf("TUN got %x, want %x", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no packet on the TUN")
	}
}

func (f *fakeTUN) expectNone(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case got := <-f.out:
		t.Fatalf("unexpected packet %x", got)
	case <-time.After(d):
	}
}

// fakeLink records the link configuration as a set, and the log of calls.
type fakeLink struct {
	mu     sync.Mutex
	mtu    int
	up     bool
	addrs  map[netip.Prefix]bool
	routes map[netip.Prefix]bool
}

func newFakeLink() *fakeLink {
	return &fakeLink{addrs: map[netip.Prefix]bool{}, routes: map[netip.Prefix]bool{}}
}

func (l *fakeLink) SetMTU(m int) error { l.mu.Lock(); l.mtu = m; l.mu.Unlock(); return nil }
func (l *fakeLink) Up() error          { l.mu.Lock(); l.up = true; l.mu.Unlock(); return nil }
func (l *fakeLink) AddAddress(p netip.Prefix) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.addrs[p] = true
	return nil
}
func (l *fakeLink) DelAddress(p netip.Prefix) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.addrs, p)
	return nil
}
func (l *fakeLink) AddRoute(p netip.Prefix) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.routes[p] {
		return os.ErrExist
	}
	l.routes[p] = true
	return nil
}
func (l *fakeLink) DelRoute(p netip.Prefix) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.routes, p)
	return nil
}

func (l *fakeLink) empty() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.addrs) == 0 && len(l.routes) == 0
}

// ipPacket builds a minimal IPv4 or IPv6 UDP-less packet; the tunnel looks
// at nothing but the version and addresses.
func ipPacket(src, dst string, payload string) []byte {
	s, d := netip.MustParseAddr(src), netip.MustParseAddr(dst)
	if s.Is4() {
		p := make([]byte, 20+len(payload))
		p[0] = 0x45
		binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
		p[8], p[9] = 64, 253
		s4, d4 := s.As4(), d.As4()
		copy(p[12:], s4[:])
		copy(p[16:], d4[:])
		copy(p[20:], payload)
		return p
	}
	p := make([]byte, 40+len(payload))
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:], uint16(len(payload)))
	p[6], p[7] = 253, 64
	s16, d16 := s.As16(), d.As16()
	copy(p[8:], s16[:])
	copy(p[24:], d16[:])
	copy(p[40:], payload)
	return p
}

// syncBuffer is a log sink that goroutines (a daemon's output copier, a
// Device's owners) write while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

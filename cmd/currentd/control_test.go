package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/current-vpn/current/metrics/metricstest"

	"github.com/current-vpn/current/config"
	"github.com/current-vpn/current/ctl"
	"github.com/current-vpn/current/tunnel"
)

// memTUN is a TUN that never produces packets and discards what it gets.
type memTUN struct {
	closed chan struct{}
	once   sync.Once
}

func (m *memTUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	<-m.closed
	return 0, os.ErrClosed
}
func (m *memTUN) Write(bufs [][]byte, offset int) (int, error) { return len(bufs), nil }
func (m *memTUN) BatchSize() int                               { return 1 }
func (m *memTUN) Close() error                                 { m.once.Do(func() { close(m.closed) }); return nil }

// memLink records the routes.
type memLink struct {
	mu     sync.Mutex
	routes map[netip.Prefix]bool
}

func (l *memLink) SetMTU(int) error              { return nil }
func (l *memLink) Up() error                     { return nil }
func (l *memLink) AddAddress(netip.Prefix) error { return nil }
func (l *memLink) DelAddress(netip.Prefix) error { return nil }
func (l *memLink) AddRoute(p netip.Prefix) error {
	l.mu.Lock()
	l.routes[p] = true
	l.mu.Unlock()
	return nil
}
func (l *memLink) DelRoute(p netip.Prefix) error {
	l.mu.Lock()
	delete(l.routes, p)
	l.mu.Unlock()
	return nil
}
func (l *memLink) has(p netip.Prefix) bool { l.mu.Lock(); defer l.mu.Unlock(); return l.routes[p] }

func testConfig(t *testing.T, name string, priv config.PrivateKey) *config.Config {
	t.Helper()
	return &config.Config{Interface: config.Interface{
		Name:            name,
		PrivateKeyFile:  "/etc/current/" + name + ".key",
		ListenPort:      config.DefaultListenPort,
		MTU:             1400,
		Suite:           config.DefaultSuite,
		StateDir:        config.DefaultStateDir,
		RekeyInterval:   config.DefaultRekeyInterval,
		RekeyBytes:      config.DefaultRekeyBytes,
		DeadPeerTimeout: config.DefaultDeadPeerTimeout,
		PrivateKey:      priv,
	}}
}

func newKey(t *testing.T) (config.PrivateKey, config.PublicKey) {
	t.Helper()
	priv, err := config.GeneratePrivateKey(config.DefaultSuite)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := priv.Public()
	if err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

func startTestDevice(t *testing.T, cfg *config.Config, port int, log *slog.Logger) (*tunnel.Device, *memLink) {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	tcfg := tunnelConfig(cfg, log)
	tcfg.ListenPort = port
	tcfg.StateDir = ""
	link := &memLink{routes: map[netip.Prefix]bool{}}
	dev, err := tunnel.New(tcfg, &memTUN{closed: make(chan struct{})}, link)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	return dev, link
}

// tcpPair starts device A, which waits for B, and device B, which dials
// A over TCP on loopback, and returns A's configuration, device and link.
func tcpPair(t *testing.T, log *slog.Logger) (*config.Config, *tunnel.Device, *memLink) {
	t.Helper()
	privA, pubA := newKey(t)
	privB, pubB := newKey(t)

	cfgA := testConfig(t, "ctla0", privA)
	cfgA.Peers = []config.Peer{{Name: "b", PublicKey: pubB, Transport: config.TransportTCP,
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/32")}}}
	devA, linkA := startTestDevice(t, cfgA, 0, log)

	port := devA.ListenAddr().(*net.TCPAddr).Port
	ep, err := config.ParseEndpoint(net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		t.Fatal(err)
	}
	cfgB := testConfig(t, "ctlb0", privB)
	cfgB.Peers = []config.Peer{{Name: "a", PublicKey: pubA, Endpoint: ep, Transport: config.TransportTCP,
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32")}}}
	startTestDevice(t, cfgB, -1, log)
	return cfgA, devA, linkA
}

func TestControlSocket(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	cfgA, devA, linkA := tcpPair(t, log)

	// The configuration file, for save; its mode must survive.
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "ctla0.toml")
	data, err := cfgA.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, data, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(cfgPath, 0o640); err != nil {
		t.Fatal(err)
	}

	sockDir := filepath.Join(dir, "run")
	ctlc, err := listenControl(sockDir, cfgA, cfgPath, log)
	if err != nil {
		t.Fatal(err)
	}
	ctlc.serve(devA)
	t.Cleanup(ctlc.Close)

	// A second daemon for the same interface is refused.
	if c2, err := listenControl(sockDir, cfgA, cfgPath, log); err == nil {
		c2.Close()
		t.Fatal("second control socket for the same interface: no error")
	} else if !errors.Is(err, ctl.ErrInUse) {
		t.Fatalf("second control socket: %v, want ErrInUse", err)
	}

	c, err := ctl.Dial(ctl.SocketPath(sockDir, "ctla0"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// show: the peer, established, with an epoch.
	var st *ctl.Status
	for {
		st, err = c.Status(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Peers) == 1 && st.Peers[0].State == ctl.StateEstablished {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no established session: %+v", st)
		}
		time.Sleep(20 * time.Millisecond)
	}
	p := st.Peers[0]
	pubA, _ := cfgA.Interface.PrivateKey.Public()
	if p.Name != "b" || !p.PublicKey.Equal(cfgA.Peers[0].PublicKey) || st.Interface.Name != "ctla0" || !st.Interface.PublicKey.Equal(pubA) {
		t.Fatalf("status: %+v", st)
	}
	if p.LastHandshake == nil || p.LastEpochChange == nil || p.RemoteAddress == "" || p.Transport != "tcp" {
		t.Errorf("peer status: %+v", p)
	}
	epoch := p.Epoch

	// rekey: a higher epoch, which show then reports.
	rr, err := c.Rekey(ctx, "b", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(rr.Results) != 1 || rr.Results[0].Error != nil || rr.Results[0].Epoch <= epoch {
		t.Fatalf("rekey from epoch %d: %+v", epoch, rr.Results)
	}
	if st, err = c.Status(ctx, "b"); err != nil || st.Peers[0].Epoch < rr.Results[0].Epoch {
		t.Fatalf("status after rekey: %+v, %v", st, err)
	}
	if _, err := c.Rekey(ctx, "nobody", time.Second); !errors.Is(err, ctl.Errorf(ctl.CodeUnknownPeer, "")) {
		t.Errorf("rekey of an unknown peer: %v", err)
	}

	// peer.add (saved) then peer.remove change the routes.
	_, pubC := newKey(t)
	carolNet := netip.MustParsePrefix("10.0.3.0/24")
	if err := c.AddPeer(ctx, ctl.PeerSpec{Name: "carol", PublicKey: pubC.String(), AllowedIPs: []string{carolNet.String()}}, true); err != nil {
		t.Fatal(err)
	}
	if !linkA.has(carolNet) {
		t.Error("peer.add: no route for carol")
	}
	saved, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(cfgPath); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("saved file: %v, %v; want mode 0640", fi.Mode(), err)
	}
	if sc, err := config.Parse(saved, cfgPath); err != nil || len(sc.Peers) != 2 || sc.Peers[1].Name != "carol" {
		t.Errorf("saved configuration: %v\n%s", err, saved)
	}
	if err := c.AddPeer(ctx, ctl.PeerSpec{Name: "carol2", PublicKey: pubC.String(), AllowedIPs: []string{"10.0.4.0/24"}}, false); !errors.Is(err, ctl.Errorf(ctl.CodeConflict, "")) {
		t.Errorf("adding a duplicate key: %v", err)
	}
	if st, err = c.Status(ctx, ""); err != nil || len(st.Peers) != 2 || st.Peers[1].State != ctl.StateIdle {
		t.Fatalf("status with carol: %+v, %v", st, err)
	}
	if err := c.RemovePeer(ctx, "carol", false); err != nil {
		t.Fatal(err)
	}
	if linkA.has(carolNet) {
		t.Error("peer.remove: carol's route is still there")
	}
	if !linkA.has(netip.MustParsePrefix("10.0.0.2/32")) {
		t.Error("b's route is gone")
	}
	if err := c.RemovePeer(ctx, "carol", false); !errors.Is(err, ctl.Errorf(ctl.CodeUnknownPeer, "")) {
		t.Errorf("removing carol twice: %v", err)
	}

	// metrics parse.
	text, err := c.Metrics(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fams := metricstest.Parse(t, text)
	if len(fams) == 0 {
		t.Fatal("no metric families")
	}
	if !strings.Contains(text, `peer="b"`) {
		t.Errorf("metrics without peer b:\n%s", text)
	}

	v, err := c.Version(ctx)
	if err != nil || v.Version == "" || v.GoVersion == "" {
		t.Errorf("version: %+v, %v", v, err)
	}
}

// TestControlSetPolicy: set changes the tunnel's rekey policy, reports the
// policy in force, shows in status and metrics, and with save lands in the
// file; a value the configuration rules refuse changes nothing.
func TestControlSetPolicy(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	privA, _ := newKey(t)
	_, pubB := newKey(t)
	cfgA := testConfig(t, "ctlp0", privA)
	cfgA.Peers = []config.Peer{{Name: "b", PublicKey: pubB, Transport: config.TransportTCP,
		AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/32")}}}
	devA, _ := startTestDevice(t, cfgA, -1, log)

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "ctlp0.toml")
	data, err := cfgA.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	sockDir := filepath.Join(dir, "run")
	ctlc, err := listenControl(sockDir, cfgA, cfgPath, log)
	if err != nil {
		t.Fatal(err)
	}
	ctlc.serve(devA)
	t.Cleanup(ctlc.Close)
	c, err := ctl.Dial(ctl.SocketPath(sockDir, "ctlp0"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Interval only, not saved.
	iv := ctl.Seconds(5 * time.Minute)
	pol, err := c.SetPolicy(ctx, ctl.SetParams{RekeyInterval: &iv})
	if err != nil {
		t.Fatal(err)
	}
	if pol.RekeyInterval != iv || pol.RekeyBytes != config.DefaultRekeyBytes {
		t.Fatalf("policy in force: %+v", pol)
	}
	if gi, gb := devA.RekeyPolicy(); gi != 5*time.Minute || gb != config.DefaultRekeyBytes {
		t.Fatalf("tunnel policy: %v %d", gi, gb)
	}
	if got, err := os.ReadFile(cfgPath); err != nil || string(got) != string(data) {
		t.Fatalf("file changed without save: %v\n%s", err, got)
	}

	// Bytes, saved.
	nb := uint64(512 << 20)
	pol, err = c.SetPolicy(ctx, ctl.SetParams{RekeyBytes: &nb, Save: true})
	if err != nil {
		t.Fatal(err)
	}
	if pol.RekeyInterval != iv || pol.RekeyBytes != nb {
		t.Fatalf("policy in force: %+v", pol)
	}
	if gi, gb := devA.RekeyPolicy(); gi != 5*time.Minute || gb != int64(nb) {
		t.Fatalf("tunnel policy: %v %d", gi, gb)
	}
	saved, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := config.Parse(saved, cfgPath)
	if err != nil || sc.Interface.RekeyInterval != 5*time.Minute || sc.Interface.RekeyBytes != nb || len(sc.Peers) != 1 {
		t.Fatalf("saved configuration: %v\n%s", err, saved)
	}
	st, err := c.Status(ctx, "")
	if err != nil || st.Interface.RekeyInterval != iv || st.Interface.RekeyBytes != nb {
		t.Fatalf("status: %+v, %v", st, err)
	}
	text, err := c.Metrics(ctx)
	if err != nil || !strings.Contains(text, "current_rekey_interval_seconds{") || !strings.Contains(text, " 300\n") {
		t.Fatalf("metrics: %v\n%s", err, text)
	}

	// Refused: nothing changes.
	short := ctl.Seconds(time.Second)
	if _, err := c.SetPolicy(ctx, ctl.SetParams{RekeyInterval: &short}); !errors.Is(err, ctl.Errorf(ctl.CodeBadRequest, "")) {
		t.Fatalf("interval below the minimum: %v", err)
	}
	if gi, _ := devA.RekeyPolicy(); gi != 5*time.Minute {
		t.Fatalf("tunnel policy after a refused set: %v", gi)
	}
}

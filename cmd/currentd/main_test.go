package main

import (
	"bytes"
	"io"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/current-vpn/current/config"
	"github.com/current-vpn/current/routing"
	"github.com/current-vpn/current/tunnel"
)

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		nil, {"-c"}, {"-c", "x", "extra"}, {"-c", "x", "--log-format", "xml"},
		{"-c", "x", "--log-level", "loud"}, {"--no-such-flag"}, {"-c", "x", "--version=maybe"},
	} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != exitUsage || !strings.Contains(errOut.String(), "usage: currentd -c FILE") {
			t.Errorf("%q: exit %d, want %d with the usage (%s)", args, code, exitUsage, errOut.String())
		}
	}
	var out, errOut bytes.Buffer
	missing := filepath.Join(t.TempDir(), "missing.toml")
	if code := run([]string{"-c", missing, "--log-format", "json"}, &out, &errOut); code != exitFatal || !strings.Contains(errOut.String(), `"level":"ERROR"`) {
		t.Errorf("missing file: exit %d, log %s", code, errOut.String())
	}
	// The long name and the environment give the same settings.
	t.Setenv("CURRENT_LOG_FORMAT", "json")
	errOut.Reset()
	if code := run([]string{"--config", missing}, &out, &errOut); code != exitFatal || !strings.Contains(errOut.String(), `"level":"ERROR"`) {
		t.Errorf("--config with CURRENT_LOG_FORMAT=json: exit %d, log %s", code, errOut.String())
	}
	t.Setenv("CURRENT_LOG_LEVEL", "shouting")
	errOut.Reset()
	if code := run([]string{"--config", missing}, &out, &errOut); code != exitUsage || !strings.Contains(errOut.String(), `"shouting"`) {
		t.Errorf("CURRENT_LOG_LEVEL=shouting: exit %d, %s", code, errOut.String())
	}
}

func TestVersionAndHelp(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"--version"}, &out, &errOut); code != exitOK || !strings.HasPrefix(out.String(), "currentd ") || errOut.Len() != 0 {
		t.Errorf("--version: exit %d, stdout %q, stderr %q", code, out.String(), errOut.String())
	}
	out.Reset()
	if code := run([]string{"--help"}, &out, &errOut); code != exitOK {
		t.Errorf("--help: exit %d", code)
	}
	for _, want := range []string{"--config", "--log-level", "--ctl-dir", "CURRENT_LOG_LEVEL"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help does not mention %s:\n%s", want, out.String())
		}
	}
}

func TestSdNotify(t *testing.T) {
	if err := sdNotify("READY=1"); err != nil {
		t.Fatalf("without NOTIFY_SOCKET: %v", err)
	}
	sock := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	if err := sdNotify("READY=1"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "READY=1" {
		t.Fatalf("got %q, %v", buf[:n], err)
	}
}

func TestTunnelConfig(t *testing.T) {
	k, err := config.GeneratePrivateKey(config.DefaultSuite)
	if err != nil {
		t.Fatal(err)
	}
	peer, _ := config.GeneratePrivateKey(config.DefaultSuite)
	ppub, _ := peer.Public()
	ep, _ := config.ParseEndpoint("[2001:db8::1]:51900")
	cfg := &config.Config{
		Interface: config.Interface{Suite: config.DefaultSuite, PrivateKey: k, ListenPort: 51900, Addresses: []netip.Prefix{netip.MustParsePrefix("10.1.0.1/24")}},
		Peers:     []config.Peer{{Name: "p", PublicKey: ppub, Endpoint: ep, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.1.0.2/32")}, Transport: config.TransportTCP}},
	}
	var log bytes.Buffer
	l, _ := newLogger(&log, "text", "info")
	tc := tunnelConfig(cfg, l)
	if tc.Fwmark != routing.FullTunnelMark {
		t.Errorf("sockets marked %d, want %d", tc.Fwmark, routing.FullTunnelMark)
	}
	if tc.MTU < 1280 || tc.ListenPort != 51900 || len(tc.Peers) != 1 || tc.Peers[0].Endpoint != "[2001:db8::1]:51900" || !bytes.Equal(tc.Peers[0].PublicKey, ppub.Bytes()) {
		t.Fatalf("%+v", tc)
	}
	if log.Len() != 0 {
		t.Errorf("unexpected warning: %s", log.String())
	}
	cfg.Peers[0].Transport = config.TransportAuto
	cfg.Peers[0].PersistentKeepalive = 25 * time.Second
	if tc := tunnelConfig(cfg, l); tc.Peers[0].Transport != tunnel.TransportAuto || tc.Peers[0].PersistentKeepalive != 25*time.Second {
		t.Errorf("%+v", tc.Peers[0])
	}
	before := cfg.Interface
	cfg.Interface.Fwmark, cfg.Interface.ManualRoutes = 0xca00, true
	if tc := tunnelConfig(cfg, l); tc.Fwmark != 0xca00 || !tc.ManualRoutes {
		t.Errorf("fwmark %#x, manual routes %v; want 0xca00 and true", tc.Fwmark, tc.ManualRoutes)
	}
	if !interfaceChanged(&before, &cfg.Interface) {
		t.Error("a changed fwmark and routes setting is not an interface change")
	}
}

func TestDeriveMTU(t *testing.T) {
	l, _ := newLogger(io.Discard, "text", "info")
	ep4, _ := config.ParseEndpoint("192.0.2.1:1")
	ep6, _ := config.ParseEndpoint("[2001:db8::1]:1")
	name, _ := config.ParseEndpoint("vpn.example.net:1")
	route := func(a netip.Addr) (int, error) {
		if a.Is4() {
			return 1500, nil
		}
		return 9000, nil
	}
	for _, c := range []struct {
		peers []config.Peer
		want  int
	}{
		{nil, defaultMTU},
		{[]config.Peer{{Endpoint: name}}, defaultMTU},
		{[]config.Peer{{Endpoint: ep4}}, 1500 - 20 - 8 - 32},
		{[]config.Peer{{Endpoint: ep6}, {Endpoint: ep4}}, 1500 - 20 - 8 - 32},
		{[]config.Peer{{Endpoint: ep6}}, 9000 - 40 - 8 - 32},
	} {
		if got := deriveMTU(c.peers, route, l); got != c.want {
			t.Errorf("%v: %d, want %d", c.peers, got, c.want)
		}
	}
	small := func(netip.Addr) (int, error) { return 1300, nil }
	if got := deriveMTU([]config.Peer{{Endpoint: ep4}}, small, l); got != 1280 {
		t.Errorf("floor: %d", got)
	}
}

package main

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/current-vpn/current/config"
	"github.com/current-vpn/current/ctl"
)

// TestOwnAddressRefused: a peer prefix that is one of the interface's own
// addresses is refused over the control socket (peer.add, peer.update,
// with save) and by a reload, and nothing changes: routes, peers, file.
func TestOwnAddressRefused(t *testing.T) {
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, nil))
	dir := t.TempDir()
	priv, _ := newKey(t)
	_, pubB := newKey(t)
	cfg := testConfig(t, "ctlo0", priv)
	cfg.Interface.PrivateKeyFile = filepath.Join(dir, "ctlo0.key")
	cfg.Interface.Addresses = []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}
	bNet := netip.MustParsePrefix("10.0.0.2/32")
	cfg.Peers = []config.Peer{{Name: "b", PublicKey: pubB, Transport: config.TransportTCP, AllowedIPs: []netip.Prefix{bNet}}}
	if err := config.WritePrivateKeyFile(cfg.Interface.PrivateKeyFile, priv); err != nil {
		t.Fatal(err)
	}
	dev, link := startTestDevice(t, cfg, -1, log)

	cfgPath := filepath.Join(dir, "ctlo0.toml")
	data, err := cfg.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cfgPath, data, 0o600); err != nil {
		t.Fatal(err)
	}
	ctlc, err := listenControl(filepath.Join(dir, "run"), cfg, cfgPath, log)
	if err != nil {
		t.Fatal(err)
	}
	ctlc.serve(dev)
	t.Cleanup(ctlc.Close)
	c, err := ctl.Dial(ctl.SocketPath(filepath.Join(dir, "run"), "ctlo0"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	own := netip.MustParsePrefix("10.0.0.1/32")
	_, pubC := newKey(t)
	err = c.AddPeer(ctx, ctl.PeerSpec{Name: "carol", PublicKey: pubC.String(), AllowedIPs: []string{own.String()}}, true)
	if !errors.Is(err, ctl.ErrBadRequest) || !strings.Contains(err.Error(), "10.0.0.1/32 is our own address") {
		t.Fatalf("add: %v", err)
	}
	err = c.UpdatePeer(ctx, ctl.PeerUpdateParams{Peer: "b", AllowedIPs: []string{bNet.String(), own.String()}, Save: true})
	if !errors.Is(err, ctl.ErrBadRequest) || !strings.Contains(err.Error(), "10.0.0.1/32 is our own address") {
		t.Fatalf("update: %v", err)
	}
	check := func(when string) {
		t.Helper()
		st, err := c.Status(ctx, "")
		if err != nil || len(st.Peers) != 1 || len(st.Peers[0].AllowedIPs) != 1 || st.Peers[0].AllowedIPs[0] != bNet {
			t.Fatalf("%s: status %+v, %v", when, st, err)
		}
		if link.has(own) || !link.has(bNet) {
			t.Fatalf("%s: routes changed", when)
		}
	}
	check("after the refused requests")
	if got, err := os.ReadFile(cfgPath); err != nil || string(got) != string(data) {
		t.Fatalf("file after the refused requests: %v\n%s", err, got)
	}

	// The same mistake in the file: SIGHUP keeps the running peers, and
	// the log names the file, line and key.
	bad := strings.Replace(string(data), `allowed_ips = ["10.0.0.2/32"]`, `allowed_ips = ["10.0.0.1/32"]`, 1)
	if bad == string(data) {
		t.Fatalf("no allowed_ips line in\n%s", data)
	}
	if err := os.WriteFile(cfgPath, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	ctlc.reload(cfgPath, cfg, dev, log)
	line := 0
	for i, l := range strings.Split(bad, "\n") {
		if strings.HasPrefix(l, "allowed_ips") {
			line = i + 1
		}
	}
	want := cfgPath + ":" + strconv.Itoa(line) + ": peer[0].allowed_ips: 10.0.0.1/32 is our own address (interface.addresses[0] = 10.0.0.1/24)"
	if !strings.Contains(logs.String(), "reload failed; configuration unchanged") || !strings.Contains(logs.String(), want) {
		t.Fatalf("log after reload, want %q:\n%s", want, logs.String())
	}
	check("after the refused reload")
}

package ctl_test

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/current-vpn/current/config"
	"github.com/current-vpn/current/ctl"
	"github.com/current-vpn/current/ctl/ctltest"
)

func TestApply(t *testing.T) {
	cfg, keys, err := ctltest.NewConfig("alice", "bob")
	if err != nil {
		t.Fatal(err)
	}
	aliceKey, _ := config.ParsePublicKey(keys["alice"])
	carol := config.Peer{Name: "carol", PublicKey: newKey(t), AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}}

	out, err := ctl.ApplyAdd(cfg, carol)
	if err != nil || len(out.Peers) != 3 || len(cfg.Peers) != 2 {
		t.Fatalf("ApplyAdd: %v (%d peers, original %d)", err, len(out.Peers), len(cfg.Peers))
	}
	for name, p := range map[string]config.Peer{
		"same name":   {Name: "alice", PublicKey: newKey(t), AllowedIPs: carol.AllowedIPs},
		"same key":    {Name: "dave", PublicKey: aliceKey, AllowedIPs: carol.AllowedIPs},
		"same prefix": {Name: "dave", PublicKey: newKey(t), AllowedIPs: cfg.Peers[1].AllowedIPs},
	} {
		if _, err := ctl.ApplyAdd(cfg, p); !errors.Is(err, ctl.ErrConflict) {
			t.Errorf("ApplyAdd %s: %v, want conflict", name, err)
		}
	}
	bad := carol
	bad.PersistentKeepalive = 2 * time.Hour
	if _, err := ctl.ApplyAdd(cfg, bad); !errors.Is(err, ctl.ErrBadRequest) {
		t.Errorf("ApplyAdd invalid: %v", err)
	}

	ka := 25 * time.Second
	upd := ctl.PeerUpdate{PersistentKeepalive: &ka, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.8.0.0/16")}}
	out, p, err := ctl.ApplyUpdate(cfg, ctl.PeerRef{Key: aliceKey}, upd)
	if err != nil || p.Name != "alice" || p.PersistentKeepalive != ka || out.Peers[0].AllowedIPs[0].String() != "10.8.0.0/16" {
		t.Fatalf("ApplyUpdate: %+v, %v", p, err)
	}
	if cfg.Peers[0].PersistentKeepalive != 0 || cfg.Peers[0].AllowedIPs[0].String() != "10.0.0.2/32" {
		t.Fatal("ApplyUpdate changed its input")
	}
	upd = ctl.PeerUpdate{AllowedIPs: cfg.Peers[1].AllowedIPs}
	if _, _, err := ctl.ApplyUpdate(cfg, ctl.PeerRef{Name: "alice"}, upd); !errors.Is(err, ctl.ErrConflict) {
		t.Fatalf("ApplyUpdate onto bob's prefix: %v", err)
	}
	if _, _, err := ctl.ApplyUpdate(cfg, ctl.PeerRef{Name: "zed"}, upd); !errors.Is(err, ctl.ErrUnknownPeer) {
		t.Fatalf("ApplyUpdate unknown: %v", err)
	}

	out, removed, err := ctl.ApplyRemove(cfg, ctl.PeerRef{Name: "bob"})
	if err != nil || removed.Name != "bob" || len(out.Peers) != 1 || len(cfg.Peers) != 2 {
		t.Fatalf("ApplyRemove: %v", err)
	}

	iv := time.Minute
	out, err = ctl.ApplyPolicy(cfg, ctl.PolicyUpdate{RekeyInterval: &iv})
	if err != nil || out.Interface.RekeyInterval != iv || out.Interface.RekeyBytes != cfg.Interface.RekeyBytes {
		t.Fatalf("ApplyPolicy: %v", err)
	}
	if _, err := out.Marshal(); err != nil {
		t.Fatalf("result does not marshal: %v", err)
	}
}

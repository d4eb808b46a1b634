package hostdns

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/current-vpn/current/hostdns/resolvedtest"
)

var (
	v4 = netip.MustParseAddr("10.77.0.1")
	v6 = netip.MustParseAddr("fd77::1")
)

// resolvedBackend starts a bus with the stand-in on it and detects the
// backend as the daemon would, with runDir standing for
// /run/systemd/resolve.
func resolvedBackend(t *testing.T, failMethod string) (*resolvedtest.Resolved, Backend) {
	t.Helper()
	addr := resolvedtest.StartBus(t)
	stand := resolvedtest.Serve(t, addr, failMethod)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", addr)
	b, err := detect(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if b.Name() != "systemd-resolved" {
		t.Fatalf("detected %s with systemd-resolved on the bus", b.Name())
	}
	return stand, b
}

func TestResolvedFullTunnel(t *testing.T) {
	stand, b := resolvedBackend(t, "")
	state := t.TempDir()
	a, err := Apply(b, state, "cur0", 7, Settings{Servers: []netip.Addr{v4, v6}, Search: []string{"corp.example"}, FullTunnel: true})
	if err != nil {
		t.Fatal(err)
	}
	if r, ok, err := readRecord(state, "cur0"); err != nil || !ok || r.Backend != "systemd-resolved" {
		t.Errorf("record %+v, %v, %v", r, ok, err)
	}
	if err := a.Revert(); err != nil {
		t.Fatal(err)
	}
	want := []resolvedtest.Call{
		{Method: "SetLinkDNS", Ifindex: 7, Args: []resolvedtest.LinkDNS{{Family: 2, Address: v4.AsSlice()}, {Family: 10, Address: v6.AsSlice()}}},
		{Method: "SetLinkDomains", Ifindex: 7, Args: []resolvedtest.LinkDomain{{Domain: "corp.example"}, {Domain: ".", RoutingOnly: true}}},
		{Method: "SetLinkDefaultRoute", Ifindex: 7, Args: true},
		{Method: "RevertLink", Ifindex: 7},
	}
	if got := stand.Calls(); !reflect.DeepEqual(got, want) {
		t.Errorf("calls\n%+v\nwant\n%+v", got, want)
	}
	if _, ok, _ := readRecord(state, "cur0"); ok {
		t.Error("the record outlived Revert")
	}
}

func TestResolvedSplitTunnel(t *testing.T) {
	for _, tc := range []struct {
		search       []string
		defaultRoute bool
	}{
		// With a domain of its own the tunnel answers for it only.
		{[]string{"corp.example"}, false},
		// Without one its servers would never be asked otherwise.
		{nil, true},
	} {
		stand, b := resolvedBackend(t, "")
		a, err := Apply(b, t.TempDir(), "cur0", 3, Settings{Servers: []netip.Addr{v4}, Search: tc.search})
		if err != nil {
			t.Fatal(err)
		}
		calls := stand.Calls()
		if len(calls) != 3 || calls[2].Args != tc.defaultRoute {
			t.Errorf("search %v: calls %+v, want default route %v", tc.search, calls, tc.defaultRoute)
		}
		if d := calls[1].Args.([]resolvedtest.LinkDomain); len(d) != len(tc.search) {
			t.Errorf("search %v: domains %+v (no ~. for a split tunnel)", tc.search, d)
		}
		a.Revert()
	}
}

// A refused call leaves the link reverted and no record.
func TestResolvedRefused(t *testing.T) {
	stand, b := resolvedBackend(t, "SetLinkDomains")
	state := t.TempDir()
	_, err := Apply(b, state, "cur0", 9, Settings{Servers: []netip.Addr{v4}, FullTunnel: true})
	if err == nil || !strings.Contains(err.Error(), "SetLinkDomains on cur0") || !strings.Contains(err.Error(), "stand-in refuses") {
		t.Fatalf("Apply: %v", err)
	}
	calls := stand.Calls()
	if last := calls[len(calls)-1]; last.Method != "RevertLink" || last.Ifindex != 9 {
		t.Errorf("calls %+v end without RevertLink", calls)
	}
	if _, ok, _ := readRecord(state, "cur0"); ok {
		t.Error("a failed Apply left its record")
	}
}

// Detection wants both the runtime directory and the bus name, as
// resolvectl does; otherwise it falls back to resolvconf.
func TestDetectFallsBack(t *testing.T) {
	addr := resolvedtest.StartBus(t)
	t.Setenv("DBUS_SYSTEM_BUS_ADDRESS", addr)
	check := func(label, dir string) {
		t.Helper()
		b, err := detect(dir)
		if err == nil && b.Name() == "systemd-resolved" {
			t.Errorf("%s: detected systemd-resolved", label)
		}
	}
	// The bus runs, but nobody owns org.freedesktop.resolve1.
	check("no owner", t.TempDir())
	resolvedtest.Serve(t, addr, "")
	// The name is owned, but the runtime directory is missing.
	check("no directory", filepath.Join(t.TempDir(), "missing"))

	// Neither resolvconf nor resolved: the error says what to do.
	t.Setenv("PATH", t.TempDir())
	_, err := detect(filepath.Join(t.TempDir(), "missing"))
	if err == nil || !strings.Contains(err.Error(), "install resolvconf or openresolv") {
		t.Errorf("no backend: %v", err)
	}
}

func TestResolvconfEntry(t *testing.T) {
	dir := t.TempDir()
	prog := filepath.Join(dir, "resolvconf")
	order := filepath.Join(dir, "interface-order")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := &Resolvconf{Path: prog, InterfaceOrder: order}
	if e := r.entry("cur0"); e != "cur0" {
		t.Errorf("without interface-order: %q", e)
	}
	// Debian's interface-order: the first "name*" line is the prefix.
	if err := os.WriteFile(order, []byte("lo.inet6\nlo.inet\nlo.@(dnsmasq|pdnsd)\nlo.!(pdns|pdns-recursor)\nlo\ntun*\ntap*\nhso*\nem+([0-9])?(_+([0-9]))*\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if e := r.entry("cur0"); e != "tun.cur0" {
		t.Errorf("with Debian's interface-order: %q", e)
	}
	if rec := r.Record("cur0"); rec.Backend != "resolvconf" || rec.Entry != "tun.cur0" || rec.Services != nil {
		t.Errorf("record %+v", rec)
	}
	// resolvconf as a link to resolvectl takes the bare name.
	link := filepath.Join(dir, "resolvectl-link")
	if err := os.Symlink(prog, link); err != nil {
		t.Fatal(err)
	}
	r.Path = link
	if e := r.entry("cur0"); e != "cur0" {
		t.Errorf("resolvconf a symlink: %q", e)
	}
}

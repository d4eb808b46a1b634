package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/current-vpn/current/config"
	"github.com/current-vpn/current/ctl"
	"github.com/current-vpn/current/ctl/ctltest"
)

var update = flag.Bool("update", false, "rewrite golden files")

// ctlApp is the App main.go builds, reduced to the ctl commands, with exit
// handling turned off so that tests see the codes.
func ctlApp(out, errOut *bytes.Buffer) *cli.App {
	return &cli.App{
		Name:                 "currentctl",
		Flags:                ctlFlags(),
		Commands:             ctlCommands(),
		Writer:               out,
		ErrWriter:            errOut,
		EnableBashCompletion: true,
		OnUsageError:         onUsageError,
		CommandNotFound:      commandNotFound,
		ExitErrHandler:       func(*cli.Context, error) {},
	}
}

type result struct {
	out, err string
	code     int
}

func runCtl(t *testing.T, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	err := ctlApp(&out, &errOut).Run(append([]string{"currentctl"}, args...))
	r := result{out.String(), errOut.String(), exitCodeOf(err)}
	if err != nil {
		r.err += err.Error()
	}
	return r
}

type daemon struct {
	sock string
	fake *ctltest.Fake
	keys map[string]string
}

func startDaemon(t *testing.T) *daemon {
	t.Helper()
	cfg, keys, err := ctltest.NewConfig("alice", "bob")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	hs, ep := now.Add(-90*time.Minute), now.Add(-75*time.Second)
	fake := &ctltest.Fake{Cfg: cfg, Now: now, Runtime: map[string]ctl.PeerStatus{
		"alice": {State: ctl.StateEstablished, Epoch: 42, LastHandshake: &hs, LastEpochChange: &ep, RxBytes: 1 << 20, TxBytes: 3 << 20},
	}}
	dir := filepath.Join(t.TempDir(), "run")
	srv, err := ctl.Listen("current0", dir, -1)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(fake) }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return &daemon{srv.Path(), fake, keys}
}

func (d *daemon) run(t *testing.T, args ...string) result {
	t.Helper()
	return runCtl(t, append([]string{"--socket", d.sock}, args...)...)
}

func TestShowGolden(t *testing.T) {
	key := func(b byte) config.PublicKey {
		k, err := config.ParsePublicKey("ed25519:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32)))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	hs, ep := now.Add(-(90*time.Minute + 4*time.Second)), now.Add(-75*time.Second)
	fellBack, probe := now.Add(-(2*time.Hour + 3*time.Minute)), now.Add(28*time.Second)
	st := &ctl.Status{
		Time: now,
		Interface: ctl.InterfaceStatus{Name: "current0", PublicKey: key('i'), ListenPort: 51900, Suite: "mls-xwing-ed25519",
			RekeyInterval: ctl.Seconds(2 * time.Minute), RekeyBytes: 1 << 30},
		Peers: []ctl.PeerStatus{{
			Name: "alice", PublicKey: key('a'), Endpoint: "vpn.example.net:51900", RemoteAddress: "192.0.2.1:51900",
			AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/32"), netip.MustParsePrefix("fd00::/64")},
			Transport:  "auto", ActiveTransport: "tcp", TransportReason: "fallback", FallbackSince: &fellBack, NextUDPProbe: &probe,
			PersistentKeepalive: ctl.Seconds(25 * time.Second), State: ctl.StateEstablished,
			Epoch: 42, LastEpochChange: &ep, LastHandshake: &hs, RxBytes: 1234567, TxBytes: 987654321, RxPackets: 1000, TxPackets: 2000,
			Dropped: ctl.DropCounters{Replay: 3, BadSource: 1},
		}, {
			Name: "bob", PublicKey: key('b'), AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.0.0.3/32")},
			Transport: "udp", State: ctl.StateIdle,
		}},
	}
	var b bytes.Buffer
	formatStatus(&b, st, true)
	golden(t, "show.golden", b.Bytes())
	b.Reset()
	if err := writeJSON(&b, st); err != nil {
		t.Fatal(err)
	}
	golden(t, "show.json.golden", b.Bytes())
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// TestShowJSONSchema pins the field names scripts depend on: a change
// here is a protocol change (docs/ctl.md).
func TestShowJSONSchema(t *testing.T) {
	d := startDaemon(t)
	r := d.run(t, "show", "--json")
	if r.code != 0 {
		t.Fatalf("%+v", r)
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(r.out), &doc); err != nil {
		t.Fatal(err)
	}
	keysOf := func(v any) []string {
		m, _ := v.(map[string]any)
		var ks []string
		for k := range m {
			ks = append(ks, k)
		}
		slices.Sort(ks)
		return ks
	}
	check := func(what string, got, want []string) {
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("%s keys = %v, want %v", what, got, want)
		}
	}
	check("status", keysOf(doc), []string{"time", "interface", "peers", "unauthenticated", "goroutines", "dropped", "handshake_durations"})
	check("status dropped", keysOf(doc["dropped"]), []string{"no_peer", "invalid", "no_buffer"})
	check("handshake_durations", keysOf(doc["handshake_durations"]), []string{"bounds", "counts", "count", "sum"})
	check("unauthenticated", keysOf(doc["unauthenticated"]), []string{"refused", "handshakes_responded", "cookies_sent", "held_bytes", "held_hellos", "half_open_connections"})
	check("interface", keysOf(doc["interface"]), []string{"name", "public_key", "listen_port", "suite", "rekey_interval_seconds", "rekey_bytes"})
	peers := doc["peers"].([]any)
	check("peer", keysOf(peers[0]), []string{"name", "public_key", "endpoint", "remote_address", "allowed_ips", "transport",
		"active_transport", "transport_reason", "fallback_since", "udp_probing", "next_udp_probe",
		"persistent_keepalive_seconds", "state", "epoch", "last_epoch_change", "last_handshake",
		"rx_bytes", "tx_bytes", "rx_packets", "tx_packets", "dropped",
		"epoch_changes", "tcp_fallbacks", "handshakes", "resumptions"})
	check("dropped", keysOf(peers[0].(map[string]any)["dropped"]), []string{"replay", "bad_source", "queue_full", "unknown_epoch", "bad_mac"})
	check("handshakes", keysOf(peers[0].(map[string]any)["handshakes"]), []string{"established", "timeout", "failed"})
	check("resumptions", keysOf(peers[0].(map[string]any)["resumptions"]), []string{"resumed", "failed"})
	if peers[1].(map[string]any)["last_handshake"] != nil {
		t.Error("never is not null")
	}
	if _, err := time.Parse(time.RFC3339, peers[0].(map[string]any)["last_handshake"].(string)); err != nil {
		t.Error(err)
	}

	// PEER by name or key, flags before or after it.
	for _, args := range [][]string{{"show", "bob", "--json"}, {"show", "--json", d.keys["bob"]}} {
		r := d.run(t, args...)
		var st ctl.Status
		if err := json.Unmarshal([]byte(r.out), &st); err != nil || len(st.Peers) != 1 || st.Peers[0].Name != "bob" {
			t.Errorf("%v: %+v %v", args, r, err)
		}
	}
}

func TestShowHuman(t *testing.T) {
	d := startDaemon(t)
	r := d.run(t, "-i", "ignored-with-socket", "show")
	for _, want := range []string{"interface: current0", "suite: mls-xwing-ed25519", "peer: alice", "epoch: 42, updated 1 minute, 15 seconds ago",
		"latest handshake: 1 hour, 30 minutes ago", "transfer: 1.00 MiB received, 3.00 MiB sent", "peer: bob", "session: idle"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("show output lacks %q:\n%s", want, r.out)
		}
	}
	r = d.run(t, "show", "alice")
	if r.code != 0 || strings.Contains(r.out, "interface:") || !strings.HasPrefix(r.out, "peer: alice\n") {
		t.Errorf("show alice: %+v", r)
	}
}

func TestExitCodes(t *testing.T) {
	d := startDaemon(t)
	missing := filepath.Join(t.TempDir(), "nope.sock")
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"show"}, exitOK, ""},
		{[]string{"show", "carol"}, exitFailed, `no peer "carol"`},
		{[]string{"show", "a", "b"}, exitUsage, "too many arguments"},
		{[]string{"show", "--bogus"}, exitUsage, "bogus"},
		{[]string{"show", "alice", "--bogus"}, exitUsage, "unknown flag --bogus"},
		{[]string{"rekey"}, exitUsage, "give PEER or --all"},
		{[]string{"rekey", "alice", "--all"}, exitUsage, "not both"},
		{[]string{"set"}, exitUsage, "nothing to set"},
		{[]string{"set", "--rekey-bytes", "lots"}, exitUsage, "rekey-bytes"},
		{[]string{"set", "--rekey-interval", "1s"}, exitFailed, "too short"},
		{[]string{"peers", "add", "carol"}, exitUsage, "--public-key is required"},
		{[]string{"peers", "remove"}, exitUsage, "missing argument"},
		{[]string{"peers", "update", "alice"}, exitUsage, "nothing to update"},
		{[]string{"peers", "update", "alice", "--transport", "carrier-pigeon"}, exitFailed, "not a transport"},
		{[]string{"completion", "tcsh"}, exitUsage, "unknown shell"},
	} {
		r := d.run(t, tc.args...)
		if r.code != tc.code || !strings.Contains(r.err, tc.msg) {
			t.Errorf("%v: code %d err %q, want %d and %q", tc.args, r.code, r.err, tc.code, tc.msg)
		}
	}
	for _, args := range [][]string{{"show"}, {"metrics"}, {"rekey", "--all"}, {"version"}} {
		r := runCtl(t, append([]string{"--socket", missing}, args...)...)
		if r.code != exitNotRunning || !strings.Contains(r.err, "not running") {
			t.Errorf("%v without daemon: %+v", args, r)
		}
	}
}

func TestPeerCommands(t *testing.T) {
	d := startDaemon(t)
	k, err := ctltest.NewPublicKey()
	if err != nil {
		t.Fatal(err)
	}
	r := d.run(t, "peers", "add", "carol", "--public-key", k.String(), "--allowed-ips", "10.9.0.0/16,fd09::/64",
		"--endpoint", "[2001:db8::1]:51900", "--keepalive", "25s", "--transport", "tcp", "--save")
	if r.code != 0 || !strings.Contains(r.out, "peer carol added and saved") {
		t.Fatalf("add: %+v", r)
	}
	r = d.run(t, "peers", "add", "carol", "--public-key", k.String(), "--allowed-ips", "10.10.0.0/16")
	if r.code != exitFailed || !strings.Contains(r.err, "already exists") {
		t.Fatalf("add again: %+v", r)
	}
	r = d.run(t, "peers", "update", k.String(), "--endpoint", "", "--allowed-ips", "10.9.0.0/24", "--keepalive", "0s")
	if r.code != 0 || !strings.Contains(r.out, "not saved") {
		t.Fatalf("update: %+v", r)
	}
	r = d.run(t, "peers", "list")
	if r.code != 0 || !strings.Contains(r.out, "NAME") || !strings.Contains(r.out, "carol") || strings.Count(r.out, "\n") != 4 {
		t.Fatalf("list: %+v", r)
	}
	r = d.run(t, "peers", "list", "--json")
	var peers []ctl.PeerStatus
	if err := json.Unmarshal([]byte(r.out), &peers); err != nil || len(peers) != 3 {
		t.Fatalf("list --json: %+v %v", r, err)
	}
	if c := peers[2]; c.Endpoint != "" || c.PersistentKeepalive != 0 || len(c.AllowedIPs) != 1 || c.Transport != "tcp" {
		t.Fatalf("carol after update: %+v", c)
	}
	r = d.run(t, "peers", "remove", "carol", "--save")
	if r.code != 0 {
		t.Fatalf("remove: %+v", r)
	}
	d.fake.Lock()
	saved, n := d.fake.Saved, len(d.fake.Cfg.Peers)
	d.fake.Unlock()
	if saved != 2 || n != 2 {
		t.Fatalf("saved %d, peers %d", saved, n)
	}
}

func TestRekeySetMetricsVersion(t *testing.T) {
	d := startDaemon(t)
	r := d.run(t, "rekey", "alice")
	if r.code != 0 || r.out != "alice: epoch 43\n" {
		t.Fatalf("rekey alice: %+v", r)
	}
	r = d.run(t, "rekey", "--all", "--timeout", "5s")
	if r.code != exitFailed || r.out != "alice: epoch 44\n" || !strings.Contains(r.err, "bob: peer bob has no established session") {
		t.Fatalf("rekey --all: %+v", r)
	}
	r = d.run(t, "set", "--rekey-interval", "5m", "--rekey-bytes", "512MiB")
	if r.code != 0 || !strings.HasPrefix(r.out, "rekey: every 5 minutes or 512MiB") {
		t.Fatalf("set: %+v", r)
	}
	r = d.run(t, "metrics")
	if r.code != 0 || !strings.Contains(r.out, "# TYPE current_peer_epoch gauge") || !strings.Contains(r.out, "current_rekey_bytes{interface=\"current0\"} 536870912") {
		t.Fatalf("metrics: %+v", r)
	}
	r = d.run(t, "version")
	if r.code != 0 || !strings.Contains(r.out, "currentctl ") || !strings.Contains(r.out, "currentd v0.0.0-test (go1.26, commit abc123, protocol 1)") {
		t.Fatalf("version: %+v", r)
	}
}

func TestCompletion(t *testing.T) {
	for shell, want := range map[string]string{"bash": "complete -o bashdefault", "zsh": "#compdef currentctl", "fish": "complete -c currentctl"} {
		r := runCtl(t, "completion", shell)
		if r.code != 0 || !strings.Contains(r.out, want) {
			t.Errorf("completion %s: %+v", shell, r)
		}
	}
	// urfave/cli's default completer reads os.Args rather than the
	// arguments given to Run.
	defer func(a []string) { os.Args = a }(os.Args)
	os.Args = []string{"currentctl", "peers", "--generate-bash-completion"}
	r := runCtl(t, os.Args[1:]...)
	for _, sub := range []string{"list", "add", "remove", "update"} {
		if !strings.Contains(r.out, sub) {
			t.Errorf("completion of peers lacks %s: %q", sub, r.out)
		}
	}
}

func TestUnknownCommand(t *testing.T) {
	defer func(f func(int)) { cli.OsExiter = f }(cli.OsExiter)
	for _, args := range [][]string{{"frobnicate"}, {"peers", "frobnicate"}} {
		code := -1
		cli.OsExiter = func(c int) { code = c }
		r := runCtl(t, args...)
		if code != exitUsage || !strings.Contains(r.err, "unknown command") {
			t.Errorf("%v: exit %d, %+v", args, code, r)
		}
	}
}

package config

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/current-vpn/current/session/mls"
)

const (
	ifaceHead = "[interface]\nprivate_key_file = \"/etc/current/current0.key\"\n"
	marker    = "#<-"
)

// doc expands KEY_A, KEY_B and KEY_C into example public keys.
func doc(t testing.TB, s string) string {
	return strings.NewReplacer(
		"KEY_A", examplePublic(t, "a").String(),
		"KEY_B", examplePublic(t, "b").String(),
		"KEY_C", examplePublic(t, "c").String(),
	).Replace(s)
}

func peerText(name, key, ips string) string {
	return fmt.Sprintf("\n[[peer]]\nname = %q\npublic_key = %q\nallowed_ips = [%s]\n", name, key, ips)
}

// markedLine returns the line holding the marker comment, or 0.
func markedLine(s string) int {
	for i, l := range strings.Split(s, "\n") {
		if strings.Contains(l, marker) {
			return i + 1
		}
	}
	return 0
}

func TestParseErrors(t *testing.T) {
	peerA := peerText("a", "KEY_A", `"10.0.0.1/32"`)
	peerB := peerText("b", "KEY_B", `"10.0.0.2/32"`)
	tests := []struct {
		name string
		text string // the line to report is marked with #<-
		key  string
		msg  string
	}{
		// Unknown keys.
		{"unknown top-level key", "verbose = true " + marker + "\n" + ifaceHead + peerA,
			"verbose", "unknown key"},
		{"unknown key in interface", ifaceHead + "listen-port = 5 " + marker + "\n" + peerA,
			"interface.listen-port", "unknown key (did you mean listen_port?)"},
		{"unknown key in second peer", ifaceHead + peerA + peerB + "presharedkey = \"x\" " + marker + "\n",
			"peer[1].presharedkey", "unknown key"},
		{"unknown table", ifaceHead + peerA + "[routing] " + marker + "\nx = 1\n",
			"routing", "unknown key"},
		{"unknown key in dotted table", ifaceHead + "foo.bar = 1 " + marker + "\n" + peerA,
			"interface.foo", "unknown key"},

		// Addresses and routes.
		{"bad CIDR", ifaceHead + "\n[[peer]]\nname = \"a\"\npublic_key = \"KEY_A\"\nallowed_ips = [\"10.0.0.0/33\"] " + marker + "\n",
			"peer[0].allowed_ips", `"10.0.0.0/33" is not an address with a prefix length`},
		{"bare address", ifaceHead + "\n[[peer]]\nname = \"a\"\npublic_key = \"KEY_A\"\nallowed_ips = [\"10.0.0.1\"] " + marker + "\n",
			"peer[0].allowed_ips", `"10.0.0.1" has no prefix length (did you mean 10.0.0.1/32?)`},
		{"host bits", ifaceHead + peerA + "\n[[peer]]\nname = \"b\"\npublic_key = \"KEY_B\"\nallowed_ips = [\n  \"10.0.1.0/24\",\n  \"10.0.0.1/24\", " + marker + "\n]\n",
			"peer[1].allowed_ips", `"10.0.0.1/24" has host bits set (did you mean 10.0.0.0/24?)`},
		{"host bits IPv6", ifaceHead + "\n[[peer]]\nname = \"a\"\npublic_key = \"KEY_A\"\nallowed_ips = [\"fd00::1/64\"] " + marker + "\n",
			"peer[0].allowed_ips", `"fd00::1/64" has host bits set (did you mean fd00::/64?)`},
		{"same prefix in two peers", ifaceHead + peerA + "\n[[peer]]\nname = \"b\"\npublic_key = \"KEY_B\"\nallowed_ips = [\"10.0.0.1/32\"] " + marker + "\n",
			"peer[1].allowed_ips", "10.0.0.1/32 is already routed to peer[0] (a)"},
		{"same prefix twice in a peer", ifaceHead + "\n[[peer]]\nname = \"a\"\npublic_key = \"KEY_A\"\nallowed_ips = [\"10.0.0.0/8\",\n \"10.0.0.0/8\"] " + marker + "\n",
			"peer[0].allowed_ips", "10.0.0.0/8 is listed twice"},
		{"our own address", ifaceHead + "addresses = [\"10.77.0.1/24\"]\n" + "\n[[peer]]\nname = \"a\"\npublic_key = \"KEY_A\"\nallowed_ips = [\"10.77.0.1/32\"] " + marker + "\n",
			"peer[0].allowed_ips", "10.77.0.1/32 is our own address (interface.addresses[0] = 10.77.0.1/24): traffic to it stays on this host"},
		{"our own IPv6 address", ifaceHead + "addresses = [\"10.77.0.1/24\", \"fd77::1/64\"]\n" + peerA + "\n[[peer]]\nname = \"b\"\npublic_key = \"KEY_B\"\nallowed_ips = [\n  \"10.77.0.2/32\",\n  \"fd77::1/128\", " + marker + "\n]\n",
			"peer[1].allowed_ips", "fd77::1/128 is our own address (interface.addresses[1] = fd77::1/64)"},
		{"allowed_ips not an array", ifaceHead + "\n[[peer]]\nname = \"a\"\npublic_key = \"KEY_A\"\nallowed_ips = \"10.0.0.0/8\" " + marker + "\n",
			"peer[0].allowed_ips", `must be an array of strings, e.g. ["10.0.0.0/8"]`},
		{"allowed_ips empty", ifaceHead + "\n[[peer]]\nname = \"a\"\npublic_key = \"KEY_A\"\nallowed_ips = [] " + marker + "\n",
			"peer[0].allowed_ips", "missing or empty"},
		{"bad interface address", "[interface]\nprivate_key_file = \"/k\"\naddresses = [\"10.0.0.1/24\", \"fd00::1\"] " + marker + "\n" + peerA,
			"interface.addresses", `"fd00::1" has no prefix length (did you mean fd00::1/128?)`},
		{"repeated interface address", "[interface]\nprivate_key_file = \"/k\"\naddresses = [\"10.0.0.9/24\", \"10.0.0.9/16\"] " + marker + "\n" + peerA,
			"interface.addresses", "10.0.0.9/16 repeats address 10.0.0.9/24"},
		{"multicast interface address", "[interface]\nprivate_key_file = \"/k\"\naddresses = [\"224.0.0.1/24\"] " + marker + "\n" + peerA,
			"interface.addresses", "cannot be an interface address"},

		// Keys and names.
		{"duplicate peer key", ifaceHead + peerA + "\n[[peer]]\nname = \"b\"\npublic_key = \"KEY_A\" " + marker + "\nallowed_ips = [\"10.0.0.2/32\"]\n",
			"peer[1].public_key", "same key as peer[0] (a)"},
		{"duplicate name", ifaceHead + peerA + "\n[[peer]]\nname = \"a\" " + marker + "\npublic_key = \"KEY_B\"\nallowed_ips = [\"10.0.0.2/32\"]\n",
			"peer[1].name", `"a" is also the name of peer[0]`},
		{"bad peer name", ifaceHead + "\n[[peer]]\nname = \"site b\" " + marker + "\npublic_key = \"KEY_A\"\nallowed_ips = [\"10.0.0.2/32\"]\n",
			"peer[0].name", `"site b" is not a valid peer name`},
		{"garbage public key", ifaceHead + "\n[[peer]]\nname = \"a\"\npublic_key = \"ed25519:AAAA\" " + marker + "\nallowed_ips = [\"10.0.0.2/32\"]\n",
			"peer[0].public_key", "invalid ed25519 public key: 3 bytes, want 32"},
		{"public key without algorithm", ifaceHead + "\n[[peer]]\nname = \"a\"\npublic_key = \"" + strings.Repeat("A", 43) + "=\" " + marker + "\nallowed_ips = [\"10.0.0.2/32\"]\n",
			"peer[0].public_key", "want <algorithm>:<base64>"},
		{"private key as public key", ifaceHead + "\n[[peer]]\nname = \"a\"\npublic_key = \"current-private-key:mls-xwing-ed25519:AAAA\" " + marker + "\nallowed_ips = [\"10.0.0.2/32\"]\n",
			"peer[0].public_key", "this is a private key"},
		{"peer key of another algorithm", "[interface]\nprivate_key_file = \"/k\"\nsuite = \"mls-p256-aes128-p256\"\n" + "\n[[peer]]\nname = \"a\"\npublic_key = \"KEY_A\" " + marker + "\nallowed_ips = [\"10.0.0.2/32\"]\n",
			"peer[0].public_key", "ed25519 key cannot be used with suite mls-p256-aes128-p256, which signs with p256"},

		// Missing required keys: reported at the enclosing table.
		{"missing private_key_file", "[interface] " + marker + "\nlisten_port = 1\n" + peerA,
			"interface.private_key_file", "required key is missing"},
		{"missing name", ifaceHead + "\n[[peer]] " + marker + "\npublic_key = \"KEY_A\"\nallowed_ips = [\"10.0.0.2/32\"]\n",
			"peer[0].name", "required key is missing"},
		{"missing public_key", ifaceHead + peerA + "\n[[peer]] " + marker + "\nname = \"b\"\nallowed_ips = [\"10.0.0.2/32\"]\n",
			"peer[1].public_key", "required key is missing"},
		{"relative key file", "[interface]\nprivate_key_file = \"current0.key\" " + marker + "\n" + peerA,
			"interface.private_key_file", `"current0.key" is not an absolute path`},

		// Durations and sizes.
		{"bad duration", ifaceHead + "rekey_interval = \"2 minutes\" " + marker + "\n" + peerA,
			"interface.rekey_interval", `"2 minutes" is not a duration`},
		{"duration as integer", ifaceHead + "rekey_interval = 120 " + marker + "\n" + peerA,
			"interface.rekey_interval", `such as "120s", not a bare number`},
		{"dead peer timeout too short", ifaceHead + "dead_peer_timeout = \"2s\" " + marker + "\n" + peerA,
			"interface.dead_peer_timeout", "2s is too short: the minimum is 5s"},
		{"dead peer timeout not a duration", ifaceHead + "dead_peer_timeout = \"soon\" " + marker + "\n" + peerA,
			"interface.dead_peer_timeout", `"soon" is not a duration`},
		{"rekey interval too short", ifaceHead + "rekey_interval = \"5s\" " + marker + "\n" + peerA,
			"interface.rekey_interval", "5s is too short: the minimum is 10s"},
		{"bad size unit", ifaceHead + "rekey_bytes = \"1gigabyte\" " + marker + "\n" + peerA,
			"interface.rekey_bytes", `unknown unit "gigabyte"`},
		{"bad size", ifaceHead + "rekey_bytes = \"lots\" " + marker + "\n" + peerA,
			"interface.rekey_bytes", `"lots" is not a size`},
		{"size overflow", ifaceHead + "rekey_bytes = \"99999999TiB\" " + marker + "\n" + peerA,
			"interface.rekey_bytes", "too large"},
		{"size zero", ifaceHead + "rekey_bytes = \"0GiB\" " + marker + "\n" + peerA,
			"interface.rekey_bytes", "must be more than 0"},
		{"keepalive too short", ifaceHead + peerA + "persistent_keepalive = \"500ms\" " + marker + "\n",
			"peer[0].persistent_keepalive", "500ms is out of range: use 0 (off) or 1s..1h"},
		{"keepalive too long", ifaceHead + peerA + "persistent_keepalive = \"2h\" " + marker + "\n",
			"peer[0].persistent_keepalive", "2h is out of range"},
		{"keepalive negative", ifaceHead + peerA + "persistent_keepalive = \"-1s\" " + marker + "\n",
			"peer[0].persistent_keepalive", "-1s is out of range"},
		{"keepalive integer", ifaceHead + peerA + "persistent_keepalive = 25 " + marker + "\n",
			"peer[0].persistent_keepalive", `such as "25s"`},

		// Enumerations and numbers.
		{"bad suite", ifaceHead + "suite = \"mls-x25519-aes256-ed25519\" " + marker + "\n" + peerA,
			"interface.suite", `unknown suite "mls-x25519-aes256-ed25519" (known suites: mls-xwing-ed25519, `},
		{"bad transport", ifaceHead + peerA + "transport = \"quic\" " + marker + "\n",
			"peer[0].transport", `"quic" is not a transport (want udp, tcp or auto)`},
		{"transport wrong type", ifaceHead + peerA + "transport = 1 " + marker + "\n",
			"peer[0].transport", "must be a string, not an integer"},
		{"mtu too small", ifaceHead + "mtu = 1000 " + marker + "\n" + peerA,
			"interface.mtu", "1000 is out of range: use 0 (automatic) or 1280..65535"},
		{"mtu too large", ifaceHead + "mtu = 100000 " + marker + "\n" + peerA,
			"interface.mtu", "100000 is out of range"},
		{"port too large", ifaceHead + "listen_port = 70000 " + marker + "\n" + peerA,
			"interface.listen_port", "70000 is not a port"},
		{"routes not a bool", ifaceHead + "routes = \"no\" " + marker + "\n" + peerA,
			"interface.routes", "must be true or false, not a string"},
		{"fwmark too large", ifaceHead + "fwmark = 4294967296 " + marker + "\n" + peerA,
			"interface.fwmark", "4294967296 is out of range: use 1..4294967295, or 0 for the default (51900)"},
		{"fwmark negative", ifaceHead + "fwmark = -1 " + marker + "\n" + peerA,
			"interface.fwmark", "-1 is out of range"},
		{"fwmark of the main table", ifaceHead + "fwmark = 254 " + marker + "\n" + peerA,
			"interface.fwmark", "254 is a routing table the kernel reserves"},
		{"port as string", ifaceHead + "listen_port = \"51900\" " + marker + "\n" + peerA,
			"interface.listen_port", "must be an integer, not a string"},

		// Interface names.
		{"interface name too long", ifaceHead + "name = \"current-interface0\" " + marker + "\n" + peerA,
			"interface.name", "longer than 15 bytes"},
		{"interface name with slash", ifaceHead + "name = \"cur/0\" " + marker + "\n" + peerA,
			"interface.name", "not a valid interface name"},
		{"interface name with colon", ifaceHead + "name = \"eth0:1\" " + marker + "\n" + peerA,
			"interface.name", "not a valid interface name"},
		{"interface name with space", ifaceHead + "name = \"cur 0\" " + marker + "\n" + peerA,
			"interface.name", "not a valid interface name"},
		{"interface name empty", ifaceHead + "name = \"\" " + marker + "\n" + peerA,
			"interface.name", "interface name is empty"},
		{"interface name dot-dot", ifaceHead + "name = \"..\" " + marker + "\n" + peerA,
			"interface.name", "not a valid interface name"},

		// Endpoints.
		{"IPv6 endpoint without brackets", ifaceHead + peerA + "endpoint = \"2001:db8::1:51900\" " + marker + "\n",
			"peer[0].endpoint", `an IPv6 address must be in brackets, e.g. "[2001:db8::1]:51900"`},
		{"endpoint without port", ifaceHead + peerA + "endpoint = \"vpn.example.net\" " + marker + "\n",
			"peer[0].endpoint", "is not host:port"},
		{"endpoint port zero", ifaceHead + peerA + "endpoint = \"vpn.example.net:0\" " + marker + "\n",
			"peer[0].endpoint", `port "0" is not a number from 1 to 65535`},
		{"endpoint service name", ifaceHead + peerA + "endpoint = \"vpn.example.net:https\" " + marker + "\n",
			"peer[0].endpoint", `port "https" is not a number`},
		{"endpoint host in brackets", ifaceHead + peerA + "endpoint = \"[vpn.example.net]:1\" " + marker + "\n",
			"peer[0].endpoint", "is not host:port"},
		{"endpoint bad IPv4", ifaceHead + peerA + "endpoint = \"10.0.0.256:1\" " + marker + "\n",
			"peer[0].endpoint", "neither an IP address nor a host name"},
		{"endpoint bad host name", ifaceHead + peerA + "endpoint = \"-vpn.example.net:1\" " + marker + "\n",
			"peer[0].endpoint", "not a valid host name"},
		{"endpoint empty host", ifaceHead + peerA + "endpoint = \":51900\" " + marker + "\n",
			"peer[0].endpoint", "no host"},
		{"endpoint unspecified address", ifaceHead + peerA + "endpoint = \"0.0.0.0:51900\" " + marker + "\n",
			"peer[0].endpoint", "cannot be a peer's address"},

		// Shape.
		{"interface as array", "[[interface]] " + marker + "\nprivate_key_file = \"/k\"\n" + peerA,
			"interface", "must be a table ([interface]), not an array"},
		{"peer as table", ifaceHead + "\n[peer] " + marker + "\nname = \"a\"\n",
			"peer", "must be an array of tables ([[peer]]), not a table"},
		{"peer inline array", "peer = [{name = \"a\", public_key = \"KEY_A\", allowed_ips = [\"10.0.0.1/32\"]},\n  {name = \"a\", " + marker + "\n public_key = \"KEY_B\", allowed_ips = [\"10.0.0.2/32\"]}]\n" + ifaceHead,
			"peer[1].name", `"a" is also the name of peer[0]`},
		{"syntax error", ifaceHead + "listen_port = = 1 " + marker + "\n",
			"", "expected value but found '='"},
		{"duplicate key", ifaceHead + "name = \"a\"\nname = \"b\" " + marker + "\n",
			"", "has already been defined"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkParseError(t, tc.text, tc.key, tc.msg) })
	}
}

// checkParseError parses text (with example keys expanded) and wants
// exactly one error, about key, containing msg, located at the line marked
// with the marker comment (or at no line when none is marked).
func checkParseError(t *testing.T, text, key, msg string) {
	t.Helper()
	text = doc(t, text)
	_, err := Parse([]byte(text), "current0.toml")
	if err == nil {
		t.Fatalf("Parse succeeded on\n%s", text)
	}
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("error %T is not an ErrorList: %v", err, err)
	}
	if len(list) != 1 {
		t.Errorf("want exactly one error, got %d:\n%v", len(list), err)
	}
	line := markedLine(text)
	prefix := fmt.Sprintf("current0.toml:%d: ", line)
	if line == 0 {
		prefix = "current0.toml: "
	}
	if key != "" {
		prefix += key + ": "
	}
	e := list[0]
	if !strings.HasPrefix(e.Error(), prefix) || !strings.Contains(e.Error(), msg) {
		t.Errorf("error\n  %v\nwant prefix %q and %q", e, prefix, msg)
	}
	if e.Key != key || e.File != "current0.toml" || e.Line != line {
		t.Errorf("Error{File: %q, Line: %d, Key: %q}, want {current0.toml, %d, %q}", e.File, e.Line, e.Key, line, key)
	}
}

// TestParseManyErrors checks that every problem is reported, in file order.
func TestParseManyErrors(t *testing.T) {
	text := doc(t, `[interface]
name = "a/b"
mtu = 1
[[peer]]
name = "x"
public_key = "KEY_A"
allowed_ips = ["10.0.0.1/8"]
bogus = 1
`)
	_, err := Parse([]byte(text), "f.toml")
	want := `f.toml:1: interface.private_key_file: required key is missing
f.toml:2: interface.name: "a/b" is not a valid interface name (no '/', ':', white space or non-ASCII)
f.toml:3: interface.mtu: 1 is out of range: use 0 (automatic) or 1280..65535
f.toml:7: peer[0].allowed_ips: "10.0.0.1/8" has host bits set (did you mean 10.0.0.0/8?)
f.toml:8: peer[0].bogus: unknown key (known keys here: name, public_key, endpoint, allowed_ips, persistent_keepalive, transport)`
	if err == nil || err.Error() != want {
		t.Errorf("got\n%v\nwant\n%s", err, want)
	}
}

func TestParseDefaults(t *testing.T) {
	text := doc(t, ifaceHead+peerText("a", "KEY_A", `"10.0.0.1/32"`))
	c, err := Parse([]byte(text), "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		Interface: Interface{
			Name:            "current0",
			PrivateKeyFile:  "/etc/current/current0.key",
			ListenPort:      51900,
			Suite:           mls.MLS128MLKEM768X25519AES128GCMSHA256Ed25519,
			StateDir:        "/var/lib/current",
			RekeyInterval:   120 * time.Second,
			RekeyBytes:      1 << 30,
			DeadPeerTimeout: time.Minute,
			HookTimeout:     30 * time.Second,
		},
		Peers: []Peer{{
			Name:       "a",
			PublicKey:  examplePublic(t, "a"),
			AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/32")},
			Transport:  TransportUDP,
		}},
	}
	if !reflect.DeepEqual(*c, want) {
		t.Errorf("got  %+v\nwant %+v", *c, want)
	}
}

func TestParseValues(t *testing.T) {
	text := doc(t, `
[interface]
name = "vpn-1"
private_key_file = "/k"
listen_port = 0
addresses = ["10.99.0.1/24", "fd99::1/64"]
mtu = 1420
suite = "mls-mlkem768-mldsa65"
state_dir = "/s"
routes = false
fwmark = 0xca00
rekey_interval = "1h30m"
rekey_bytes = "500MB"

[[peer]]
name = "b"
public_key = "KEY_B"
endpoint = "[fe80::1%eth0]:1"
allowed_ips = ["0.0.0.0/0", "::/0"]
persistent_keepalive = 0
transport = "tcp"

[[peer]]
name = "c"
public_key = "KEY_C"
endpoint = "vpn.example.net.:51900"
allowed_ips = ["10.1.0.0/16"]
persistent_keepalive = "25s"
transport = "auto"
`)
	// ML-DSA suite with Ed25519 keys must fail; switch the keys' suite.
	if _, err := Parse([]byte(text), "t.toml"); err == nil || !strings.Contains(err.Error(), "ed25519 key cannot be used with suite mls-mlkem768-mldsa65") {
		t.Fatalf("want suite mismatch, got %v", err)
	}
	text = strings.Replace(text, `suite = "mls-mlkem768-mldsa65"`, `suite = "mls-x25519-chacha-ed25519"`, 1)
	c, err := Parse([]byte(text), "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	ifc := c.Interface
	if ifc.Name != "vpn-1" || ifc.ListenPort != 0 || ifc.MTU != 1420 || ifc.Suite != mls.MLS128DHKEMX25519ChaCha20Poly1305SHA256Ed25519 ||
		ifc.StateDir != "/s" || ifc.RekeyInterval != 90*time.Minute || ifc.RekeyBytes != 500e6 || len(ifc.Addresses) != 2 ||
		!ifc.ManualRoutes || ifc.Fwmark != 0xca00 {
		t.Errorf("interface: %+v", ifc)
	}
	if p := c.Peers[0]; p.Endpoint != (Endpoint{"fe80::1%eth0", 1}) || p.PersistentKeepalive != 0 || p.Transport != TransportTCP {
		t.Errorf("peer 0: %+v", p)
	}
	if p := c.Peers[1]; p.Endpoint != (Endpoint{"vpn.example.net.", 51900}) || p.PersistentKeepalive != 25*time.Second || p.Transport != TransportAuto {
		t.Errorf("peer 1: %+v", p)
	}
	// Nested prefixes in different peers are allowed (longest match wins).
	if got := c.Peers[0].AllowedIPs[0]; got != netip.MustParsePrefix("0.0.0.0/0") {
		t.Errorf("allowed_ips: %v", got)
	}
}

func TestValidateCodeBuilt(t *testing.T) {
	var c Config
	err := c.Validate()
	var list ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("Validate() = %v", err)
	}
	var keys []string
	for _, e := range list {
		if e.Line != 0 || e.File != "" {
			t.Errorf("Validate error has a position: %v", e)
		}
		keys = append(keys, e.Key)
	}
	want := []string{"interface.name", "interface.private_key_file", "interface.suite", "interface.state_dir", "interface.rekey_interval", "interface.rekey_bytes"}
	if !reflect.DeepEqual(keys, want) {
		t.Errorf("keys %v, want %v", keys, want)
	}
	if !strings.HasPrefix(list[0].Error(), "interface.name: ") {
		t.Errorf("Validate error %q: want it to start with the key", list[0])
	}

	c = Config{Interface: Interface{
		Name: "x", PrivateKeyFile: "/k", Suite: DefaultSuite, StateDir: "/s",
		RekeyInterval: time.Minute, RekeyBytes: 1,
	}}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() = %v on a valid config without peers", err)
	}
	c.Peers = []Peer{{Name: "p", PublicKey: examplePublic(t, "p"), AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, Transport: 7}}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "peer[0].transport: invalid transport 7") {
		t.Errorf("Validate() = %v, want invalid transport", err)
	}
}

// writeKey writes a key file and a config naming it; it returns the
// config's path.
func writeConfig(t *testing.T, dir, body string) string {
	t.Helper()
	path := filepath.Join(dir, "current0.toml")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	keyPath := filepath.Join(dir, "current0.key")
	own := exampleKey(t, "own")
	if err := WritePrivateKeyFile(keyPath, own); err != nil {
		t.Fatal(err)
	}
	body := func(peerKey string) string {
		return doc(t, fmt.Sprintf("[interface]\nprivate_key_file = %q %s\n", keyPath, marker)+
			peerText("a", "KEY_A", `"10.0.0.1/32"`)+
			fmt.Sprintf("\n[[peer]]\nname = \"b\"\npublic_key = %q\nallowed_ips = [\"10.0.0.2/32\"]\n", peerKey))
	}
	path := writeConfig(t, dir, body(examplePublic(t, "b").String()))

	c, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytesEqual(c.Interface.PrivateKey.Bytes(), own.Bytes()) {
		t.Error("Load did not return the private key")
	}

	// A peer with our own key.
	ownPub, _ := own.Public()
	path = writeConfig(t, dir, body(ownPub.String()))
	_, err = Load(path)
	wantErr(t, err, fmt.Sprintf("%s:%d: peer[1].public_key: this is our own public key", path, lineOf(body(ownPub.String()), ownPub.String())))

	path = writeConfig(t, dir, body(examplePublic(t, "b").String()))
	line := markedLine(body(""))
	at := fmt.Sprintf("%s:%d: interface.private_key_file: ", path, line)

	// Mode.
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o610, 0o601} {
		if err := os.Chmod(keyPath, mode); err != nil {
			t.Fatal(err)
		}
		_, err = Load(path)
		wantErr(t, err, at+fmt.Sprintf("key file %s has mode %04o; it must be 0600 (chmod 600 %s)", keyPath, mode, keyPath))
	}
	if err := os.Chmod(keyPath, 0o400); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err != nil {
		t.Errorf("mode 0400: %v", err)
	}
	if _, err := LoadWithOptions(path, Options{SkipKeyFile: true}); err != nil {
		t.Errorf("SkipKeyFile: %v", err)
	}
	os.Chmod(keyPath, 0o600)

	// A symbolic link to a good key file is fine; its target's mode counts.
	link := filepath.Join(dir, "link.key")
	if err := os.Symlink(keyPath, link); err != nil {
		t.Fatal(err)
	}
	linkBody := strings.Replace(body(examplePublic(t, "b").String()), keyPath, link, 1)
	lpath := writeConfig(t, dir, linkBody)
	if _, err := Load(lpath); err != nil {
		t.Errorf("symlink: %v", err)
	}

	// Not a regular file, and missing.
	dirBody := strings.Replace(linkBody, link, dir, 1)
	_, err = Load(writeConfig(t, dir, dirBody))
	wantErr(t, err, at+fmt.Sprintf("key file %s is not a regular file", dir))
	missing := filepath.Join(dir, "missing.key")
	_, err = Load(writeConfig(t, dir, strings.Replace(linkBody, link, missing, 1)))
	wantErr(t, err, at+fmt.Sprintf("key file %s does not exist", missing))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing key file: errors.Is(err, os.ErrNotExist) is false for %v", err)
	}

	// A key of another suite, even with the same signature algorithm.
	other, err := newPrivateKey(mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519, own.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if err := WritePrivateKeyFile(keyPath, other); err != nil {
		t.Fatal(err)
	}
	_, err = Load(writeConfig(t, dir, body(examplePublic(t, "b").String())))
	wantErr(t, err, at+fmt.Sprintf("key file %s holds a key for suite mls-x25519-aes128-ed25519, but interface.suite is mls-xwing-ed25519", keyPath))

	// A corrupt key file.
	if err := os.WriteFile(keyPath, []byte("hello\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(path)
	wantErr(t, err, at+fmt.Sprintf("key file %s: not a current private key", keyPath))

	// The configuration file itself.
	_, err = Load(filepath.Join(dir, "nope.toml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing config: %v", err)
	}
	_, err = Load(dir)
	wantErr(t, err, dir+": not a regular file")
}

func wantErr(t *testing.T, err error, prefix string) {
	t.Helper()
	if err == nil || !strings.HasPrefix(err.Error(), prefix) {
		t.Errorf("error\n  %v\nwant prefix\n  %s", err, prefix)
	}
}

func lineOf(text, substr string) int {
	for i, l := range strings.Split(text, "\n") {
		if strings.Contains(l, substr) {
			return i + 1
		}
	}
	return 0
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }

func TestMarshalRoundTrip(t *testing.T) {
	files, err := filepath.Glob("../configs/*.toml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example configs: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, err := LoadWithOptions(f, Options{SkipKeyFile: true})
			if err != nil {
				t.Fatal(err)
			}
			roundTrip(t, c)
		})
	}
}

// roundTrip checks that Marshal writes what Parse reads back as c, and
// that a second Marshal writes the same bytes.
func roundTrip(t testing.TB, c *Config) {
	t.Helper()
	out, err := c.Marshal()
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	c2, err := Parse(out, "marshalled.toml")
	if err != nil {
		t.Fatalf("Parse(Marshal()): %v\n%s", err, out)
	}
	if !reflect.DeepEqual(c, c2) {
		t.Fatalf("round trip changed the config:\n%+v\n%+v\n%s", c, c2, out)
	}
	out2, err := c2.Marshal()
	if err != nil || string(out2) != string(out) {
		t.Fatalf("Marshal is not stable: %v\n%s\n---\n%s", err, out, out2)
	}
}

func TestMarshalShape(t *testing.T) {
	c, err := Parse([]byte(doc(t, ifaceHead+peerText("a", "KEY_A", `"10.0.0.1/32"`)+"endpoint = \"[2001:db8::1]:51900\"\npersistent_keepalive = \"90s\"\n")), "t")
	if err != nil {
		t.Fatal(err)
	}
	out, err := c.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	want := doc(t, `# current configuration. Written by a program: comments are not kept.

[interface]
name = "current0"
private_key_file = "/etc/current/current0.key"
listen_port = 51900
mtu = 0
suite = "mls-xwing-ed25519"
state_dir = "/var/lib/current"
routes = true
rekey_interval = "2m"
rekey_bytes = "1GiB"
dead_peer_timeout = "1m"
hook_timeout = "30s"

[[peer]]
name = "a"
public_key = "KEY_A"
endpoint = "[2001:db8::1]:51900"
allowed_ips = ["10.0.0.1/32"]
persistent_keepalive = "90s"
transport = "udp"
`)
	if string(out) != want {
		t.Errorf("Marshal:\n%s\nwant:\n%s", out, want)
	}

	c.Peers = append(c.Peers, c.Peers[0])
	if _, err := c.Marshal(); err == nil {
		t.Error("Marshal accepted an invalid config")
	}
}

// TestExamples parses every example and checks that the example keys and
// addresses of the two sides of each setup agree.
func TestExamples(t *testing.T) {
	load := func(name string) *Config {
		c, err := LoadWithOptions(filepath.Join("..", "configs", name), Options{SkipKeyFile: true})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	files, _ := filepath.Glob("../configs/*")
	if len(files) != 4 {
		t.Errorf("configs/ has %d files, this test knows 4", len(files))
	}
	a, b := load("site-to-site-a.toml"), load("site-to-site-b.toml")
	hub, laptop := load("hub.toml"), load("laptop.toml")

	checkPeer := func(c *Config, i int, label string, other *Config) {
		t.Helper()
		p := c.Peers[i]
		if !p.PublicKey.Equal(examplePublic(t, label)) {
			t.Errorf("%s: peer %s has key %s, want the example key %q", c.Interface.Addresses[0], p.Name, p.PublicKey, label)
		}
		if other == nil {
			return
		}
		// The peer's tunnel addresses must be routed to it.
		for _, addr := range other.Interface.Addresses {
			host := netip.PrefixFrom(addr.Addr(), addr.Addr().BitLen())
			found := false
			for _, aip := range p.AllowedIPs {
				found = found || aip == host
			}
			if !found {
				t.Errorf("peer %s: allowed_ips %v lack its address %s", p.Name, p.AllowedIPs, host)
			}
		}
	}
	checkPeer(a, 0, "site-b", b)
	checkPeer(b, 0, "site-a", a)
	checkPeer(laptop, 0, "hub", nil)
	checkPeer(hub, 0, "laptop-alice", laptop)
	checkPeer(hub, 1, "laptop-bob", nil)
	checkPeer(hub, 2, "laptop-carol", nil)
	if laptop.Peers[0].Transport != TransportAuto || laptop.Peers[0].PersistentKeepalive == 0 || laptop.Interface.ListenPort != 0 {
		t.Errorf("laptop.toml should show transport auto, keepalive and an ephemeral port: %+v", laptop.Peers[0])
	}
	if len(hub.Peers) != 3 {
		t.Errorf("hub.toml has %d peers, want 3", len(hub.Peers))
	}
}

// TestAllowedIPsAndOwnAddresses: only the host prefix of one of our own
// addresses is refused; every wider prefix containing it is a setup people
// use (see ownAddress).
func TestAllowedIPsAndOwnAddresses(t *testing.T) {
	base := func(addrs ...string) Config {
		c := Config{Interface: Interface{
			Name: "x", PrivateKeyFile: "/k", Suite: DefaultSuite, StateDir: "/s",
			RekeyInterval: time.Minute, RekeyBytes: 1,
		}}
		for _, a := range addrs {
			c.Interface.Addresses = append(c.Interface.Addresses, netip.MustParsePrefix(a))
		}
		return c
	}
	peer := func(ips ...string) Peer {
		p := Peer{Name: "p", PublicKey: examplePublic(t, "p")}
		for _, ip := range ips {
			p.AllowedIPs = append(p.AllowedIPs, netip.MustParsePrefix(ip))
		}
		return p
	}
	ok := []struct {
		name  string
		addrs []string
		ips   []string
	}{
		{"hub with spokes in its subnet", []string{"10.77.0.1/24", "fd77::1/64"}, []string{"10.77.0.2/32", "fd77::2/128"}},
		{"spoke reaching its subnet via the hub", []string{"10.77.0.10/24", "fd77::10/64"}, []string{"10.77.0.0/24", "fd77::/64"}},
		{"host-addressed spoke", []string{"10.77.0.10/32"}, []string{"10.77.0.0/24"}},
		{"site-to-site aggregate", []string{"10.77.0.1/24"}, []string{"10.0.0.0/8"}},
		{"narrower than our subnet", []string{"10.77.0.5/16"}, []string{"10.77.0.0/24"}},
		{"full tunnel", []string{"10.77.0.10/24", "fd77::10/64"}, []string{"0.0.0.0/0", "::/0"}},
		{"other family only", []string{"10.77.0.1/24"}, []string{"::a4d:1/128"}},
	}
	for _, tc := range ok {
		c := base(tc.addrs...)
		c.Peers = []Peer{peer(tc.ips...)}
		if err := c.Validate(); err != nil {
			t.Errorf("%s: Validate() = %v", tc.name, err)
		}
	}

	c := base("10.77.0.1/24", "fd77::1/64")
	c.Peers = []Peer{peer("10.77.0.2/32", "fd77::1/128", "10.77.0.1/32")}
	err := c.Validate()
	var list ErrorList
	if !errors.As(err, &list) || len(list) != 2 {
		t.Fatalf("Validate() = %v, want two errors", err)
	}
	for i, want := range []string{
		"peer[0].allowed_ips: fd77::1/128 is our own address (interface.addresses[1] = fd77::1/64)",
		"peer[0].allowed_ips: 10.77.0.1/32 is our own address (interface.addresses[0] = 10.77.0.1/24)",
	} {
		if !strings.HasPrefix(list[i].Error(), want) {
			t.Errorf("error %d = %q, want it to start with %q", i, list[i], want)
		}
	}
}

package config

import (
	"strings"
	"testing"
	"time"
)

func TestSize(t *testing.T) {
	good := []struct {
		in   string
		n    uint64
		back string
	}{
		{"1GiB", 1 << 30, "1GiB"},
		{"1 GiB", 1 << 30, "1GiB"},
		{"1024MiB", 1 << 30, "1GiB"},
		{"1536MiB", 1536 << 20, "1536MiB"},
		{"3TiB", 3 << 40, "3TiB"},
		{"1KiB", 1024, "1KiB"},
		{"500MB", 500e6, "500MB"},
		{"2GB", 2e9, "2GB"},
		{"1TB", 1e12, "1TB"},
		{"1KB", 1000, "1KB"},
		{"12345", 12345, "12345B"},
		{"12345B", 12345, "12345B"},
		{"0B", 0, "0B"},
		{"16777215TiB", 16777215 << 40, "16777215TiB"},
	}
	for _, tc := range good {
		n, err := ParseSize(tc.in)
		if err != nil || n != tc.n {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", tc.in, n, err, tc.n)
		}
		if got := FormatSize(n); got != tc.back {
			t.Errorf("FormatSize(%d) = %q, want %q", n, got, tc.back)
		}
	}
	for _, in := range []string{"", "GiB", "1.5GiB", "-1GiB", "1gib", "1 G", "1GiBs", "16777216TiB", "99999999999999999999", "0x10"} {
		if n, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q) = %d, want an error", in, n)
		}
	}
}

func TestFmtDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 120 * time.Second: "2m", 90 * time.Second: "90s", 2 * time.Hour: "2h",
		1500 * time.Millisecond: "1500ms", 1500 * time.Microsecond: "1.5ms", -time.Second: "-1s",
	} {
		if got := fmtDuration(d); got != want {
			t.Errorf("fmtDuration(%v) = %q, want %q", d, got, want)
		}
		if back, err := time.ParseDuration(fmtDuration(d)); err != nil || back != d {
			t.Errorf("fmtDuration(%v) does not parse back: %v, %v", d, back, err)
		}
	}
}

func TestEndpoint(t *testing.T) {
	good := []struct {
		in   string
		want Endpoint
		ip   bool
	}{
		{"vpn.example.net:51900", Endpoint{"vpn.example.net", 51900}, false},
		{"vpn.example.net.:1", Endpoint{"vpn.example.net.", 1}, false},
		{"localhost:65535", Endpoint{"localhost", 65535}, false},
		{"_vpn.internal:5", Endpoint{"_vpn.internal", 5}, false},
		{"192.0.2.1:51900", Endpoint{"192.0.2.1", 51900}, true},
		{"[2001:db8::1]:51900", Endpoint{"2001:db8::1", 51900}, true},
		{"[fe80::1%eth0]:51900", Endpoint{"fe80::1%eth0", 51900}, true},
		{"[::ffff:192.0.2.1]:1", Endpoint{"::ffff:192.0.2.1", 1}, true},
	}
	for _, tc := range good {
		e, err := ParseEndpoint(tc.in)
		if err != nil || e != tc.want {
			t.Errorf("ParseEndpoint(%q) = %+v, %v; want %+v", tc.in, e, err, tc.want)
			continue
		}
		if e.String() != tc.in {
			t.Errorf("%+v.String() = %q, want %q", e, e.String(), tc.in)
		}
		if ap, ok := e.AddrPort(); ok != tc.ip || (ok && ap.Port() != e.Port) {
			t.Errorf("%q.AddrPort() = %v, %v", tc.in, ap, ok)
		}
	}
	bad := map[string]string{
		"":                                     "is not host:port",
		"vpn.example.net":                      "is not host:port",
		"2001:db8::1:51900":                    `"[2001:db8::1]:51900"`,
		"::1:51900":                            "must be in brackets",
		"[2001:db8::1]":                        "is not host:port",
		"[2001:db8::1:51900":                   "is not host:port",
		"[192.0.2.1]:51900":                    "is not host:port",
		"[vpn.example.net]:51900":              "is not host:port",
		"vpn.example.net:":                     `port "" is not a number`,
		"vpn.example.net:0":                    `port "0" is not a number`,
		"vpn.example.net:65536":                `port "65536"`,
		"vpn.example.net:+1":                   `port "+1"`,
		"vpn.example.net:051900":               `port "051900"`,
		"vpn.example.net:ssh":                  `port "ssh"`,
		":51900":                               "no host",
		"[::]:51900":                           "cannot be a peer's address",
		"224.0.0.1:51900":                      "cannot be a peer's address",
		"[::1%]:51900":                         "is not an IPv6 address",
		"1.2.3:51900":                          "neither an IP address nor a host name",
		"vpn..example:1":                       "not a valid host name",
		"vpn.example-:1":                       "not a valid host name",
		"vpn example:1":                        "not a valid host name",
		"vpn/x:1":                              "not a valid host name",
		"é.example:1":                          "not a valid host name",
		strings.Repeat("a", 64) + ".example:1": "not a valid host name",
		strings.Repeat(strings.Repeat("a", 60)+".", 5) + "x:1": "not a valid host name",
	}
	for in, msg := range bad {
		if e, err := ParseEndpoint(in); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("ParseEndpoint(%q) = %+v, %v; want error with %q", in, e, err, msg)
		}
	}
}

func TestInterfaceName(t *testing.T) {
	for _, n := range []string{"current0", "wg-vpn.1", "a", "fifteen-chars-x", "vpn_0", "tun@x"} {
		if err := checkInterfaceName(n); err != nil {
			t.Errorf("%q: %v", n, err)
		}
	}
	for _, n := range []string{"", ".", "..", "sixteen-chars-xx", "a/b", "a:b", "a b", "a\tb", "a\nb", "é", "a\x7f"} {
		if err := checkInterfaceName(n); err == nil {
			t.Errorf("%q accepted", n)
		}
	}
}

func TestTransport(t *testing.T) {
	for _, tr := range []Transport{TransportUDP, TransportTCP, TransportAuto} {
		got, err := ParseTransport(tr.String())
		if err != nil || got != tr {
			t.Errorf("ParseTransport(%q) = %v, %v", tr, got, err)
		}
	}
	if DefaultTransport != Transport(0) {
		t.Error("the zero Transport must be the default")
	}
	for _, s := range []string{"", "UDP", "quic", "udp "} {
		if _, err := ParseTransport(s); err == nil {
			t.Errorf("ParseTransport(%q) succeeded", s)
		}
	}
	if got := Transport(9).String(); got != "transport(9)" {
		t.Errorf("Transport(9).String() = %q", got)
	}
}

func TestSuggest(t *testing.T) {
	known := []string{"name", "public_key", "endpoint", "allowed_ips", "persistent_keepalive", "transport"}
	for in, want := range map[string]string{
		"AllowedIPs": "allowed_ips", "allowed-ips": "allowed_ips", "publickey": "public_key",
		"endpiont": "endpoint", "PersistentKeepalive": "persistent_keepalive",
		"presharedkey": "", "x": "", "": "", strings.Repeat("a", 1000): "",
	} {
		if got := suggest(in, known); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}

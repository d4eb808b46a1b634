package config

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseHostErrors(t *testing.T) {
	peerA := peerText("a", "KEY_A", `"10.0.0.1/32"`)
	withDNS := ifaceHead + "dns = [\"10.77.0.1\"]\n"
	tests := []struct {
		name, text, key, msg string
	}{
		{"dns as a string", ifaceHead + "dns = \"10.77.0.1\" " + marker + "\n" + peerA,
			"interface.dns", `must be an array of strings, e.g. ["10.77.0.1"]`},
		{"dns as a number", ifaceHead + "dns = 53 " + marker + "\n" + peerA,
			"interface.dns", "must be an array of strings such as [\"10.77.0.1\"], not an integer"},
		{"dns element not a string", ifaceHead + "dns = [\n  \"10.77.0.1\",\n  53, " + marker + "\n]\n" + peerA,
			"interface.dns", "element 1 must be a string, not an integer"},
		{"dns not an address", ifaceHead + "dns = [\n  \"10.77.0.1\",\n  \"resolver.corp\", " + marker + "\n]\n" + peerA,
			"interface.dns", `"resolver.corp" is not an IP address`},
		{"dns a prefix", ifaceHead + "dns = [\"10.77.0.1/32\"] " + marker + "\n" + peerA,
			"interface.dns", `a resolver is an address (did you mean "10.77.0.1"?)`},
		{"dns with a zone", ifaceHead + "dns = [\"fe80::1%eth0\"] " + marker + "\n" + peerA,
			"interface.dns", "takes no zone"},
		{"dns unspecified", ifaceHead + "dns = [\"::\"] " + marker + "\n" + peerA,
			"interface.dns", ":: cannot be a resolver's address"},
		{"dns twice", ifaceHead + "dns = [\"10.77.0.1\",\n \"10.77.0.1\"] " + marker + "\n" + peerA,
			"interface.dns", "10.77.0.1 is listed twice (also dns[0])"},
		{"too many dns", ifaceHead + "dns = [" + manyAddrs(MaxDNS+1) + "] " + marker + "\n" + peerA,
			"interface.dns", "17 resolvers; at most 16"},
		{"dns_search without dns", ifaceHead + "dns_search = [\"corp.example\"] " + marker + "\n" + peerA,
			"interface.dns_search", "needs dns"},
		{"dns_search bad name", withDNS + "dns_search = [\"corp example\"] " + marker + "\n" + peerA,
			"interface.dns_search", `"corp example" is not a domain name`},
		{"dns_search routing domain", withDNS + "dns_search = [\"~.\"] " + marker + "\n" + peerA,
			"interface.dns_search", "routing-only domains (~) are not supported"},
		{"dns_search a string", withDNS + "dns_search = \"corp.example\" " + marker + "\n" + peerA,
			"interface.dns_search", `must be an array of strings, e.g. ["corp.example"]`},
		{"pre_up a string", ifaceHead + "pre_up = \"true\" " + marker + "\n" + peerA,
			"interface.pre_up", `must be an array of strings, e.g. ["true"]`},
		{"post_up element a table", ifaceHead + "post_up = [\n  \"true\",\n  {cmd = \"x\"}, " + marker + "\n]\n" + peerA,
			"interface.post_up", "element 1 must be a string, not a table"},
		{"pre_down empty command", ifaceHead + "pre_down = [\"true\",\n \"  \"] " + marker + "\n" + peerA,
			"interface.pre_down", "empty command"},
		{"post_down NUL", ifaceHead + "post_down = [\"echo \\u0000\"] " + marker + "\n" + peerA,
			"interface.post_down", "contains a NUL byte"},
		{"hook too long", ifaceHead + "post_up = [\"" + strings.Repeat("x", MaxHookLen+1) + "\"] " + marker + "\n" + peerA,
			"interface.post_up", "command is 4097 bytes long; at most 4096"},
		{"too many hooks", ifaceHead + "pre_up = [" + strings.Repeat("\"true\", ", MaxHooks+1) + "] " + marker + "\n" + peerA,
			"interface.pre_up", "33 commands; at most 32"},
		{"hook_timeout bare number", ifaceHead + "hook_timeout = 30 " + marker + "\n" + peerA,
			"interface.hook_timeout", `such as "30s", not a bare number`},
		{"hook_timeout too long", ifaceHead + "hook_timeout = \"2h\" " + marker + "\n" + peerA,
			"interface.hook_timeout", "2h is out of range: use 1s..1h, or 0 for the default (30s)"},
		{"hook_timeout too short", ifaceHead + "hook_timeout = \"10ms\" " + marker + "\n" + peerA,
			"interface.hook_timeout", "out of range"},
		{"misspelt hook", ifaceHead + "postup = [\"true\"] " + marker + "\n" + peerA,
			"interface.postup", "unknown key (did you mean post_up?)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkParseError(t, tc.text, tc.key, tc.msg) })
	}
}

func manyAddrs(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "\"10.77.0.%d\", ", i+1)
	}
	return b.String()
}

func TestParseHostValues(t *testing.T) {
	text := doc(t, ifaceHead+`dns = ["10.77.0.1", "fd77::1"]
dns_search = ["corp.example", "lab.corp.example."]
pre_up = ["echo pre %i", "true"]
post_up = ["echo post %i"]
pre_down = ["echo down %i"]
post_down = ["echo gone %i"]
hook_timeout = "5s"
`+peerText("a", "KEY_A", `"0.0.0.0/0", "::/0"`))
	c, err := Parse([]byte(text), "t.toml")
	if err != nil {
		t.Fatal(err)
	}
	ifc := c.Interface
	wantDNS := []netip.Addr{netip.MustParseAddr("10.77.0.1"), netip.MustParseAddr("fd77::1")}
	if !reflect.DeepEqual(ifc.DNS, wantDNS) || !reflect.DeepEqual(ifc.DNSSearch, []string{"corp.example", "lab.corp.example."}) {
		t.Errorf("dns %v, search %v", ifc.DNS, ifc.DNSSearch)
	}
	wantHooks := Hooks{
		PreUp: []string{"echo pre %i", "true"}, PostUp: []string{"echo post %i"},
		PreDown: []string{"echo down %i"}, PostDown: []string{"echo gone %i"},
	}
	if !reflect.DeepEqual(ifc.Hooks, wantHooks) || ifc.HookTimeout != 5*time.Second || ifc.HookTimeoutOrDefault() != 5*time.Second {
		t.Errorf("hooks %+v, timeout %s", ifc.Hooks, ifc.HookTimeout)
	}
	if !c.FullTunnel() {
		t.Error("a peer with 0.0.0.0/0 is not a full tunnel")
	}
	roundTrip(t, c)

	c.Peers[0].AllowedIPs = c.Peers[0].AllowedIPs[:0:0]
	c.Peers[0].AllowedIPs = append(c.Peers[0].AllowedIPs, netip.MustParsePrefix("10.0.0.0/8"))
	if c.FullTunnel() {
		t.Error("10.0.0.0/8 is a full tunnel")
	}
	// A Config built in code with no timeout gets the default.
	c.Interface.HookTimeout = 0
	if err := c.Validate(); err != nil || c.Interface.HookTimeoutOrDefault() != DefaultHookTimeout {
		t.Errorf("zero hook_timeout: %v, %s", err, c.Interface.HookTimeoutOrDefault())
	}
}

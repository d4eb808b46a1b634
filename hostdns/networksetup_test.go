package hostdns

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// listServicesOutput is what macOS prints, as wg-quick's darwin backend
// reads it.
const listServicesOutput = `An asterisk (*) denotes that a network service is disabled.
Wi-Fi
*Bluetooth PAN
Thunderbolt Bridge
USB 10/100/1000 LAN
`

func TestParseServices(t *testing.T) {
	got := parseServices(listServicesOutput)
	want := []string{"Wi-Fi", "Thunderbolt Bridge", "USB 10/100/1000 LAN"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%q, want %q", got, want)
	}
}

func TestParseSetting(t *testing.T) {
	for out, want := range map[string][]string{
		"There aren't any DNS Servers set on Wi-Fi.\n":    nil,
		"There aren't any Search Domains set on Wi-Fi.\n": nil,
		"192.168.1.1\n2001:db8::53\n":                     {"192.168.1.1", "2001:db8::53"},
		"corp.example\r\nlab.example\r\n":                 {"corp.example", "lab.example"},
		"":                                                nil,
	} {
		if got := parseSetting(out); !reflect.DeepEqual(got, want) {
			t.Errorf("%q: %q, want %q", out, got, want)
		}
	}
}

func TestSetArgs(t *testing.T) {
	got := setArgs(ServiceDNS{Name: "Wi-Fi", Servers: []string{"10.0.0.53"}, Search: []string{"corp.example"}})
	want := [][]string{{"-setdnsservers", "Wi-Fi", "10.0.0.53"}, {"-setsearchdomains", "Wi-Fi", "corp.example"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%q, want %q", got, want)
	}
	got = setArgs(ServiceDNS{Name: "Thunderbolt Bridge"})
	want = [][]string{{"-setdnsservers", "Thunderbolt Bridge", "Empty"}, {"-setsearchdomains", "Thunderbolt Bridge", "Empty"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%q, want %q", got, want)
	}
}

func TestCheckServices(t *testing.T) {
	ok := []ServiceDNS{{Name: "Wi-Fi", Servers: []string{"192.168.1.1"}, Search: []string{"lan"}}}
	if err := checkServices(ok); err != nil {
		t.Errorf("rejected %+v: %v", ok, err)
	}
	for name, svcs := range map[string][]ServiceDNS{
		"option name":  {{Name: "-setdnsservers"}},
		"empty name":   {{Name: ""}},
		"control char": {{Name: "Wi\nFi"}},
		"server":       {{Name: "Wi-Fi", Servers: []string{"-x"}}},
		"domain":       {{Name: "Wi-Fi", Search: []string{"-d"}}},
		"too many":     make([]ServiceDNS, maxServices+1),
	} {
		if err := checkServices(svcs); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// fakeNetworksetup is a shell script standing in for macOS's program
// (not ours, and not on Linux): it keeps each service's lists in files
// of dir ('/' in a name becomes '_') and prints what networksetup prints.
const fakeNetworksetup = `#!/bin/sh
d=$(dirname "$0")
n=$(printf '%s' "$2" | tr / _)
case "$1" in
-listallnetworkservices) printf '%s' "$LIST" ;;
-getdnsservers) if [ -s "$d/dns-$n" ]; then cat "$d/dns-$n"; else echo "There aren't any DNS Servers set on $2."; fi ;;
-getsearchdomains) if [ -s "$d/search-$n" ]; then cat "$d/search-$n"; else echo "There aren't any Search Domains set on $2."; fi ;;
-setdnsservers|-setsearchdomains)
	f=dns; [ "$1" = -setsearchdomains ] && f=search
	shift 2
	if [ "$1" = Empty ]; then : > "$d/$f-$n"; else printf '%s\n' "$@" > "$d/$f-$n"; fi ;;
*) echo "unknown $1" >&2; exit 1 ;;
esac
`

func installFakeNetworksetup(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "networksetup")
	if err := os.WriteFile(path, []byte(fakeNetworksetup), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("LIST", listServicesOutput)
	if err := os.WriteFile(filepath.Join(dir, "dns-Wi-Fi"), []byte("192.168.1.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	old := networksetupPath
	networksetupPath = path
	t.Cleanup(func() { networksetupPath = old })
	return dir
}

func readLines(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// TestNetworksetupApplyRevert runs Apply and Revert against the fake:
// every enabled service gets the tunnel's settings, the disabled one is
// left alone, and Revert brings back what each had.
func TestNetworksetupApplyRevert(t *testing.T) {
	dir := installFakeNetworksetup(t)
	state := t.TempDir()
	s := Settings{Servers: []netip.Addr{netip.MustParseAddr("10.0.0.53")}, Search: []string{"corp.example"}}
	a, err := Apply(NewNetworksetup(), state, "utun4", 0, s)
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range []string{"Wi-Fi", "Thunderbolt Bridge", "USB 10_100_1000 LAN"} {
		if got := readLines(t, filepath.Join(dir, "dns-"+svc)); got != "10.0.0.53" {
			t.Errorf("%s servers %q", svc, got)
		}
		if got := readLines(t, filepath.Join(dir, "search-"+svc)); got != "corp.example" {
			t.Errorf("%s search %q", svc, got)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "dns-Bluetooth PAN")); !os.IsNotExist(err) {
		t.Errorf("disabled service touched: %v", err)
	}
	if err := a.Revert(); err != nil {
		t.Fatal(err)
	}
	if got := readLines(t, filepath.Join(dir, "dns-Wi-Fi")); got != "192.168.1.1" {
		t.Errorf("Wi-Fi servers after Revert %q", got)
	}
	if got := readLines(t, filepath.Join(dir, "dns-Thunderbolt Bridge")); got != "" {
		t.Errorf("Thunderbolt Bridge servers after Revert %q", got)
	}
	if _, ok, err := readRecord(state, "utun4"); ok || err != nil {
		t.Errorf("record left after Revert: %v %v", ok, err)
	}
}

// TestNetworksetupRecover is a daemon killed after Apply: the next start
// restores the services from the record alone.
func TestNetworksetupRecover(t *testing.T) {
	dir := installFakeNetworksetup(t)
	state := t.TempDir()
	s := Settings{Servers: []netip.Addr{netip.MustParseAddr("10.0.0.53")}}
	if _, err := Apply(NewNetworksetup(), state, "utun4", 0, s); err != nil {
		t.Fatal(err)
	}
	rec, err := Recover(state, "utun4")
	if err != nil || rec == nil || rec.Backend != "networksetup" {
		t.Fatalf("Recover: %+v, %v", rec, err)
	}
	if got := readLines(t, filepath.Join(dir, "dns-Wi-Fi")); got != "192.168.1.1" {
		t.Errorf("Wi-Fi servers after Recover %q", got)
	}
	if _, ok, _ := readRecord(state, "utun4"); ok {
		t.Error("record left after Recover")
	}
}

func FuzzNetworksetupOutput(f *testing.F) {
	f.Add(listServicesOutput, "192.168.1.1\n")
	f.Add("", "There aren't any DNS Servers set on Wi-Fi.\n")
	f.Fuzz(func(t *testing.T, services, setting string) {
		var svcs []ServiceDNS
		for _, name := range parseServices(services) {
			svcs = append(svcs, ServiceDNS{Name: name, Servers: parseSetting(setting), Search: parseSetting(setting)})
		}
		if checkServices(svcs) != nil {
			return
		}
		// What passes is safe to hand back to networksetup.
		for _, svc := range svcs {
			for _, args := range setArgs(svc) {
				for _, a := range args[1:] {
					if a == "" || a[0] == '-' {
						t.Fatalf("argument %q", a)
					}
				}
			}
		}
	})
}

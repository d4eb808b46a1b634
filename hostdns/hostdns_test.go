package hostdns

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolvConfText(t *testing.T) {
	s := Settings{Servers: []netip.Addr{netip.MustParseAddr("10.77.0.1"), netip.MustParseAddr("fd77::1")}, Search: []string{"corp.example", "lab.example"}}
	want := "nameserver 10.77.0.1\nnameserver fd77::1\nsearch corp.example lab.example\n"
	if got := resolvConfText(s); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	s.Search = nil
	if got := resolvConfText(s); strings.Contains(got, "search") {
		t.Errorf("search line without domains: %q", got)
	}
}

func TestRecordParse(t *testing.T) {
	for _, tc := range []struct {
		in, err string
	}{
		{`{"backend":"resolvconf","entry":"tun.cur0"}`, ""},
		{`{"backend":"systemd-resolved"}`, ""},
		{`{"backend":"systemd-resolved","entry":"x"}`, "has no entry"},
		{`{"backend":"resolvconf"}`, "bad resolvconf entry"},
		{`{"backend":"resolvconf","entry":"-d"}`, "bad resolvconf entry"},
		{`{"backend":"resolvconf","entry":"../x"}`, "bad resolvconf entry"},
		{`{"backend":"resolvconf","entry":"a b"}`, "bad resolvconf entry"},
		{`{"backend":"netplan"}`, "unknown backend"},
		{`{"backend":`, "record:"},
		{strings.Repeat(" ", maxRecord+1), "more than"},
	} {
		_, err := parseRecord([]byte(tc.in))
		if (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%.40q: %v, want %q", tc.in, err, tc.err)
		}
	}
}

func TestRecordFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if _, ok, err := readRecord(dir, "cur0"); ok || err != nil {
		t.Fatalf("no record: %v %v", ok, err)
	}
	if err := writeRecord(dir, "cur0", Record{Backend: "resolvconf", Entry: "tun.cur0"}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(recordPath(dir, "cur0"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("record file: %v %v", fi, err)
	}
	r, ok, err := readRecord(dir, "cur0")
	if !ok || err != nil || r.Entry != "tun.cur0" {
		t.Fatalf("read back %+v %v %v", r, ok, err)
	}
	// A record of systemd-resolved needs no undoing: Recover only drops it.
	if err := writeRecord(dir, "cur0", Record{Backend: "systemd-resolved"}); err != nil {
		t.Fatal(err)
	}
	if rec, err := Recover(dir, "cur0"); err != nil || rec == nil || rec.Backend != "systemd-resolved" {
		t.Fatalf("Recover: %+v %v", rec, err)
	}
	if rec, err := Recover(dir, "cur0"); err != nil || rec != nil {
		t.Fatalf("second Recover: %+v %v", rec, err)
	}
	// A corrupt record is reported and removed, so it cannot fail every
	// later start.
	if err := os.WriteFile(recordPath(dir, "cur0"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Recover(dir, "cur0"); err == nil || !strings.Contains(err.Error(), "removed") {
		t.Fatalf("corrupt record: %v", err)
	}
	if _, err := os.Stat(recordPath(dir, "cur0")); !os.IsNotExist(err) {
		t.Errorf("corrupt record kept: %v", err)
	}
}

func FuzzParseRecord(f *testing.F) {
	f.Add([]byte(`{"backend":"resolvconf","entry":"tun.cur0"}`))
	f.Add([]byte(`{"backend":"systemd-resolved"}`))
	f.Add([]byte(`{"backend":"resolvconf","entry":"-x"}`))
	f.Add([]byte(`[]`))
	f.Add([]byte(`{"backend":"networksetup","services":[{"name":"Wi-Fi","servers":["192.168.1.1"],"search":["lan"]}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseRecord(b)
		if err != nil {
			return
		}
		// Whatever parses is safe to act on: a known backend, and an
		// entry that is no option and no path.
		switch r.Backend {
		case "resolvconf":
			if checkEntry(r.Entry) != nil || strings.ContainsAny(r.Entry, "/ ") || r.Entry[0] == '-' {
				t.Fatalf("accepted entry %q", r.Entry)
			}
		case "systemd-resolved":
			if r.Entry != "" {
				t.Fatalf("accepted entry %q for systemd-resolved", r.Entry)
			}
		case "networksetup":
			// Service names and values go back to networksetup as
			// arguments: none may look like an option.
			for _, svc := range r.Services {
				for _, args := range setArgs(svc) {
					for _, a := range args[1:] {
						if a == "" || a[0] == '-' {
							t.Fatalf("argument %q from %+v", a, svc)
						}
					}
				}
			}
		default:
			t.Fatalf("accepted backend %q", r.Backend)
		}
	})
}

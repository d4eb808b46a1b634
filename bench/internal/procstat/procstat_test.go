package procstat

import (
	"os"
	"testing"
	"time"
)

func TestParseCPU(t *testing.T) {
	// A name with a space and a parenthesis, utime 250 and stime 50.
	stat := []byte("1234 (cur rent) d) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 12345 1000000 500 18446744073709551615")
	got, err := ParseCPU(stat)
	if err != nil {
		t.Fatal(err)
	}
	if want := 3 * time.Second; got != want {
		t.Fatalf("ParseCPU = %v, want %v", got, want)
	}
	for _, bad := range []string{"", "1 (x) S 1 2", "1 x S 1 1 1 0 -1 0 0 0 0 0 1 1", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 -1 1"} {
		if _, err := ParseCPU([]byte(bad)); err == nil {
			t.Errorf("ParseCPU(%q) succeeded", bad)
		}
	}
}

func TestParseVmRSS(t *testing.T) {
	kb, err := ParseVmRSS([]byte("Name:\tcurrentd\nVmPeak:\t  9000 kB\nVmRSS:\t   14712 kB\nThreads: 9\n"))
	if err != nil || kb != 14712 {
		t.Fatalf("ParseVmRSS = %d, %v; want 14712", kb, err)
	}
	for _, bad := range []string{"", "VmRSS:\n", "VmRSS: x kB\n", "VmRSS: -5 kB\n"} {
		if _, err := ParseVmRSS([]byte(bad)); err == nil {
			t.Errorf("ParseVmRSS(%q) succeeded", bad)
		}
	}
}

// The readers against this process's own /proc files.
func TestSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc on this system")
	}
	kb, err := VmRSSKB(os.Getpid())
	if err != nil || kb <= 0 {
		t.Fatalf("VmRSSKB = %d, %v", kb, err)
	}
	before, err := CPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Burn CPU until the tick-granular counter moves.
	deadline := time.Now().Add(5 * time.Second)
	x := 0
	for time.Now().Before(deadline) {
		for i := range 1 << 20 {
			x += i
		}
		if after, err := CPU(os.Getpid()); err == nil && after > before {
			return
		}
	}
	t.Fatalf("CPU time did not advance in 5 s of work (%d)", x)
}

func TestParseSNMP(t *testing.T) {
	snmp := []byte("Ip: Forwarding DefaultTTL\nIp: 1 64\nUdp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\nUdp: 100 2 7 90 5 0\nUdpLite: InDatagrams RcvbufErrors\nUdpLite: 0 9\n")
	if v, err := ParseSNMP(snmp, "Udp", "RcvbufErrors"); err != nil || v != 5 {
		t.Fatalf("RcvbufErrors = %d, %v; want 5", v, err)
	}
	if v, err := ParseSNMP(snmp, "UdpLite", "RcvbufErrors"); err != nil || v != 9 {
		t.Fatalf("UdpLite RcvbufErrors = %d, %v; want 9", v, err)
	}
	for _, bad := range []string{"", "Udp: RcvbufErrors\n", "Udp: RcvbufErrors\nUdp: x\n", "Udp: A\nUdp: 1\n"} {
		if _, err := ParseSNMP([]byte(bad), "Udp", "RcvbufErrors"); err == nil {
			t.Errorf("ParseSNMP(%q) succeeded", bad)
		}
	}
	if _, err := UDPRcvbufErrors(os.Getpid()); err != nil {
		t.Logf("this system has no /proc/PID/net/snmp: %v", err)
	}
}

// smapsSample is three mappings of a /proc/PID/smaps, shortened: the Go
// heap, a pool chunk (dd) and receive slots (dd wf).
const smapsSample = `c000000000-c004000000 rw-p 00000000 00:00 0
Size:              65536 kB
Rss:                9000 kB
VmFlags: rd wr mr mw me ac sd
7f0000000000-7f0000220000 rw-p 00000000 00:00 0
Size:               2176 kB
Rss:                 128 kB
VmFlags: rd wr mr mw me ac sd dd
7f0000300000-7f0000b80000 rw-p 00000000 00:00 0
Size:               8704 kB
Rss:                 512 kB
VmFlags: rd wr mr mw me ac sd dd wf
`

// TestParseSmaps: the pool and the slots are told apart by their flags,
// the heap counts for neither, and a bad size is an error.
func TestParseSmaps(t *testing.T) {
	m, err := ParseSmaps([]byte(smapsSample))
	if err != nil || m.PoolKB != 128 || m.SlotsKB != 512 {
		t.Fatalf("ParseSmaps = %+v, %v; want pool 128 kB, slots 512 kB", m, err)
	}
	if _, err := ParseSmaps([]byte("Rss: x kB\n")); err == nil {
		t.Fatal("a bad Rss line parsed")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("1234 (cur rent) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0"))
	f.Add([]byte("VmRSS:\t 14712 kB\n"))
	f.Add([]byte(")"))
	f.Add([]byte("Udp: InDatagrams RcvbufErrors\nUdp: 1 2\n"))
	f.Add([]byte(smapsSample))
	f.Add([]byte(netDevSample))
	f.Add([]byte(udpSample))
	f.Add([]byte("1595698a 00000000 00000004\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := ParseSmaps(b); err == nil && (m.PoolKB < 0 || m.SlotsKB < 0) {
			t.Fatalf("negative packet memory %+v", m)
		}
		_, _ = ParseSNMP(b, "Udp", "RcvbufErrors")
		if devs, err := ParseNetDev(b); err == nil && len(devs) == 0 {
			t.Fatal("ParseNetDev succeeded with no interface")
		}
		_, _ = ParseSoftnetDropped(b)
		_, _ = ParseUDPSockets(b)
		if d, err := ParseCPU(b); err == nil && d < 0 {
			t.Fatalf("negative CPU time %v", d)
		}
		if kb, err := ParseVmRSS(b); err == nil && kb < 0 {
			t.Fatalf("negative RSS %d", kb)
		}
	})
}

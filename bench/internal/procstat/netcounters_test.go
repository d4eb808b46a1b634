package procstat

import (
	"os"
	"testing"
)

const netDevSample = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  581740  6251    0    0    0     0          0         0   581740    6251    0    0    0     0       0          0
current0: 9000 100 1 7 0 0 0 0 12000 200 2 3 0 0 0 0
`

func TestParseNetDev(t *testing.T) {
	devs, err := ParseNetDev([]byte(netDevSample))
	if err != nil {
		t.Fatal(err)
	}
	want := []NetDev{
		{Name: "lo", RxPackets: 6251, TxPackets: 6251},
		{Name: "current0", RxPackets: 100, RxErrs: 1, RxDrop: 7, TxPackets: 200, TxErrs: 2, TxDrop: 3},
	}
	if len(devs) != len(want) {
		t.Fatalf("ParseNetDev = %+v, want %+v", devs, want)
	}
	for i := range want {
		if devs[i] != want[i] {
			t.Errorf("interface %d = %+v, want %+v", i, devs[i], want[i])
		}
	}
	for _, bad := range []string{"", "Inter-| x\n face |y\n", "eth0: 1 2 3\n", "eth0: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 x\n"} {
		if _, err := ParseNetDev([]byte(bad)); err == nil {
			t.Errorf("ParseNetDev(%q) succeeded", bad)
		}
	}
}

const udpSample = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  123: 0100007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 12345 2 0000000000000000 0
  124: 00000000:2328 00000000:0000 07 00000000:00000A00 00:00000000 00000000     0        0 12346 2 0000000000000000 17
`

func TestParseUDPSockets(t *testing.T) {
	socks, err := ParseUDPSockets([]byte(udpSample))
	if err != nil {
		t.Fatal(err)
	}
	want := []UDPSocket{{Port: 53, Drops: 0}, {Port: 9000, RxQueue: 2560, Drops: 17}}
	if len(socks) != 2 || socks[0] != want[0] || socks[1] != want[1] {
		t.Fatalf("ParseUDPSockets = %+v, want %+v", socks, want)
	}
	for _, bad := range []string{"", "x\n", "sl\n 1: 0100007F 0 0 0 0 0 0 0 0 0 0 0\n", "sl\n 1: 0100007F:zz 0 0 0 0 0 0 0 0 0 0 0\n", "sl\n 1: 0100007F:0035 0 0 0:0 0 0 0 0 0 0 0 x\n", "sl\n 1: 0100007F:0035 0 0 0:zz 0 0 0 0 0 0 0 0\n"} {
		if _, err := ParseUDPSockets([]byte(bad)); err == nil {
			t.Errorf("ParseUDPSockets(%q) succeeded", bad)
		}
	}
}

func TestParseSoftnetDropped(t *testing.T) {
	b := []byte("1595698a 00000000 00000004\n13ec4075 0000001f 00000003\n")
	if n, err := ParseSoftnetDropped(b); err != nil || n != 31 {
		t.Fatalf("ParseSoftnetDropped = %d, %v; want 31", n, err)
	}
	for _, bad := range []string{"", "\n", "1595698a\n", "1 zz\n"} {
		if _, err := ParseSoftnetDropped([]byte(bad)); err == nil {
			t.Errorf("ParseSoftnetDropped(%q) succeeded", bad)
		}
	}
}

func TestNetCountersSub(t *testing.T) {
	before := NetCounters{"Udp:RcvbufErrors": 5, "dev:tun:rx_drop": 9, "gone": 1}
	after := NetCounters{"Udp:RcvbufErrors": 12, "dev:tun:rx_drop": 9, "new": 4}
	d := after.Sub(before)
	if len(d) != 1 || d["Udp:RcvbufErrors"] != 7 {
		t.Fatalf("Sub = %v, want only Udp:RcvbufErrors=7", d)
	}
	if s := d.String(); s != "Udp:RcvbufErrors=7" {
		t.Errorf("String = %q", s)
	}
	if s := (NetCounters{"a": 0}).String(); s != "none" {
		t.Errorf("String of zeros = %q, want none", s)
	}
}

// The reader against this process's own namespace.
func TestReadNetCountersSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/net/snmp"); err != nil {
		t.Skip("no /proc/PID/net on this system")
	}
	c := ReadNetCounters(os.Getpid())
	if _, ok := c["Udp:RcvbufErrors"]; !ok {
		t.Errorf("no Udp:RcvbufErrors in %v", c)
	}
	if _, ok := c["udp:other:drops"]; !ok {
		t.Errorf("no udp:other:drops in %v", c)
	}
	if _, ok := c["dev:lo:rx_drop"]; !ok {
		t.Errorf("no dev:lo:rx_drop in %v", c)
	}
}

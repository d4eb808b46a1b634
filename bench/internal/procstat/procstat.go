// Package procstat reads what the benchmarks measure of a process from
// /proc: its resident set (VmRSS) and its CPU time (utime + stime).
package procstat

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTick is USER_HZ, the unit of utime and stime: 100 on every Linux
// architecture Go supports (sysconf(_SC_CLK_TCK) is fixed by the ABI).
const clockTick = 100

var errFormat = errors.New("procstat: unexpected format")

// VmRSSKB is the VmRSS of process pid, in kB.
func VmRSSKB(pid int) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	return ParseVmRSS(b)
}

// ParseVmRSS reads the VmRSS line of a /proc/PID/status, in kB.
func ParseVmRSS(status []byte) (int64, error) {
	for line := range bytes.Lines(status) {
		if rest, ok := bytes.CutPrefix(line, []byte("VmRSS:")); ok {
			fs := strings.Fields(string(rest))
			if len(fs) == 0 {
				return 0, errFormat
			}
			kb, err := strconv.ParseInt(fs[0], 10, 64)
			if err != nil || kb < 0 {
				return 0, errFormat
			}
			return kb, nil
		}
	}
	return 0, errFormat
}

// CPU is the user plus system CPU time process pid has used.
func CPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return ParseCPU(b)
}

// ParseCPU reads utime + stime (fields 14 and 15) of a /proc/PID/stat.
// The command name (field 2) is in parentheses and may hold spaces and
// parentheses itself, so the fields are counted from its last ')'.
func ParseCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errFormat
	}
	fs := strings.Fields(string(stat[i+1:]))
	// After the name: state (3), ..., utime (14), stime (15).
	if len(fs) < 13 {
		return 0, errFormat
	}
	var ticks int64
	for _, f := range fs[11:13] {
		t, err := strconv.ParseInt(f, 10, 64)
		if err != nil || t < 0 || t > 1<<50 {
			return 0, errFormat
		}
		ticks += t
	}
	return time.Duration(ticks) * time.Second / clockTick, nil
}

// UDPRcvbufErrors is the RcvbufErrors counter of the UDP line in
// /proc/PID/net/snmp: datagrams dropped because a socket's receive buffer
// was full, in the network namespace of process pid.
func UDPRcvbufErrors(pid int) (uint64, error) { return UDPCounter(pid, "RcvbufErrors") }

// UDPCounter is one counter of the UDP line in /proc/PID/net/snmp (e.g.
// OutDatagrams), in the network namespace of process pid.
func UDPCounter(pid int, name string) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/net/snmp")
	if err != nil {
		return 0, err
	}
	return ParseSNMP(b, "Udp", name)
}

// ParseSNMP reads one counter of /proc/net/snmp, where each protocol has a
// line of names followed by a line of values, both starting "Proto:".
func ParseSNMP(snmp []byte, proto, name string) (uint64, error) {
	prefix := proto + ":"
	var names []string
	for line := range bytes.Lines(snmp) {
		fs := strings.Fields(string(line))
		if len(fs) == 0 || fs[0] != prefix {
			continue
		}
		if names == nil {
			names = fs
			continue
		}
		for i, n := range names {
			if n == name && i < len(fs) {
				v, err := strconv.ParseUint(fs[i], 10, 64)
				if err != nil {
					return 0, errFormat
				}
				return v, nil
			}
		}
		return 0, errFormat
	}
	return 0, errFormat
}

// PacketMemory is the resident size, in kB, of a currentd's packet memory:
// its mappings flagged dd (MADV_DONTDUMP, the buffer pool) and dd wf
// (MADV_WIPEONFORK too, the readers' receive slots), as tunnel's
// mapflags_linux.go marks them; the Go runtime marks none of its own.
type PacketMemory struct {
	PoolKB, SlotsKB int64
}

// PacketMemoryOf reads the packet memory of process pid from
// /proc/PID/smaps.
func PacketMemoryOf(pid int) (PacketMemory, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps")
	if err != nil {
		return PacketMemory{}, err
	}
	return ParseSmaps(b)
}

// ParseSmaps sums the Rss of the flagged mappings of a /proc/PID/smaps:
// each mapping's fields come after its header line, VmFlags last.
func ParseSmaps(smaps []byte) (PacketMemory, error) {
	var m PacketMemory
	var rss int64
	for line := range bytes.Lines(smaps) {
		fs := strings.Fields(string(line))
		if len(fs) < 2 {
			continue
		}
		switch fs[0] {
		case "Rss:":
			n, err := strconv.ParseInt(fs[1], 10, 64)
			if err != nil || n < 0 {
				return PacketMemory{}, errFormat
			}
			rss = n
		case "VmFlags:":
			dd, wf := false, false
			for _, f := range fs[1:] {
				dd = dd || f == "dd"
				wf = wf || f == "wf"
			}
			switch {
			case dd && wf:
				m.SlotsKB += rss
			case dd:
				m.PoolKB += rss
			}
			rss = 0
		}
	}
	return m, nil
}

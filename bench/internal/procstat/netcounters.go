package procstat

import (
	"bytes"
	"os"
	"slices"
	"strconv"
	"strings"
)

// The kernel's packet-drop counters of a network namespace, so that a
// benchmark can say where a lost packet went: the IP and UDP counters of
// /proc/PID/net/snmp, every interface's drops and errors from
// /proc/PID/net/dev, and the per-CPU backlog drops of
// /proc/PID/net/softnet_stat (not per namespace: the machine's).

// NetCounters is one reading of a namespace's drop counters, by name:
// "Ip:InDiscards", "Udp:RcvbufErrors", "dev:tun0:rx_drop",
// "softnet:dropped", ...
type NetCounters map[string]uint64

// snmpCounters are the counters of /proc/net/snmp that count a packet
// the kernel dropped or could not deliver.
var snmpCounters = []struct{ proto, name string }{
	{"Ip", "InHdrErrors"}, {"Ip", "InAddrErrors"}, {"Ip", "InUnknownProtos"},
	{"Ip", "InDiscards"}, {"Ip", "OutDiscards"}, {"Ip", "OutNoRoutes"},
	{"Udp", "NoPorts"}, {"Udp", "InErrors"}, {"Udp", "RcvbufErrors"},
	{"Udp", "SndbufErrors"}, {"Udp", "InCsumErrors"},
}

// ReadNetCounters reads the drop counters of process pid's namespace.
// The UDP sockets' own drops (full receive buffers) are
// "udp:PORT:drops" for each of ports, the local port of a socket that
// matters, and "udp:other:drops" for every other socket. A file that
// cannot be read or parsed leaves its counters out.
func ReadNetCounters(pid int, ports ...uint16) NetCounters {
	dir := "/proc/" + strconv.Itoa(pid) + "/net/"
	c := NetCounters{}
	if b, err := os.ReadFile(dir + "udp"); err == nil {
		if socks, err := ParseUDPSockets(b); err == nil {
			for _, p := range ports {
				c["udp:"+strconv.Itoa(int(p))+":drops"] = 0
			}
			c["udp:other:drops"] = 0
			for _, so := range socks {
				k := "udp:" + strconv.Itoa(int(so.Port)) + ":drops"
				if !slices.Contains(ports, so.Port) {
					k = "udp:other:drops"
				}
				c[k] += so.Drops
			}
		}
	}
	if b, err := os.ReadFile(dir + "snmp"); err == nil {
		for _, k := range snmpCounters {
			if v, err := ParseSNMP(b, k.proto, k.name); err == nil {
				c[k.proto+":"+k.name] = v
			}
		}
	}
	if b, err := os.ReadFile(dir + "dev"); err == nil {
		if devs, err := ParseNetDev(b); err == nil {
			for _, d := range devs {
				c["dev:"+d.Name+":rx_errs"] = d.RxErrs
				c["dev:"+d.Name+":rx_drop"] = d.RxDrop
				c["dev:"+d.Name+":tx_errs"] = d.TxErrs
				c["dev:"+d.Name+":tx_drop"] = d.TxDrop
			}
		}
	}
	if b, err := os.ReadFile(dir + "softnet_stat"); err == nil {
		if n, err := ParseSoftnetDropped(b); err == nil {
			c["softnet:dropped"] = n
		}
	}
	return c
}

// Sub is what grew from before to c: the counters present in both that
// moved forward (a counter that went back, an interface that came and
// went, says nothing).
func (c NetCounters) Sub(before NetCounters) NetCounters {
	d := NetCounters{}
	for k, v := range c {
		if b, ok := before[k]; ok && v > b {
			d[k] = v - b
		}
	}
	return d
}

// String lists the non-zero counters, sorted by name; "none" if all are
// zero.
func (c NetCounters) String() string {
	var parts []string
	for k, v := range c {
		if v != 0 {
			parts = append(parts, k+"="+strconv.FormatUint(v, 10))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

// UDPSocket is one line of /proc/net/udp: the socket's local port, the
// bytes waiting in its receive queue and the datagrams it dropped at a
// full receive buffer.
type UDPSocket struct {
	Port    uint16
	RxQueue uint64
	Drops   uint64
}

// UDPRxQueue is the sum of the receive queues of process pid's
// namespace's UDP sockets bound to port: the bytes received and not yet
// read.
func UDPRxQueue(pid int, port uint16) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/net/udp")
	if err != nil {
		return 0, err
	}
	socks, err := ParseUDPSockets(b)
	if err != nil {
		return 0, err
	}
	var n uint64
	for _, so := range socks {
		if so.Port == port {
			n += so.RxQueue
		}
	}
	return n, nil
}

// ParseUDPSockets reads /proc/net/udp: a header line, then per socket
// "sl: local_address rem_address st tx_queue:rx_queue tr:tm->when
// retrnsmt uid timeout inode ref pointer drops", addresses as hex
// IP:PORT.
func ParseUDPSockets(b []byte) ([]UDPSocket, error) {
	var out []UDPSocket
	header := true
	for line := range bytes.Lines(b) {
		fs := strings.Fields(string(line))
		if header {
			header = false
			if len(fs) == 0 || fs[0] != "sl" {
				return nil, errFormat
			}
			continue
		}
		if len(fs) == 0 {
			continue
		}
		if len(fs) < 13 {
			return nil, errFormat
		}
		_, port, ok := strings.Cut(fs[1], ":")
		if !ok {
			return nil, errFormat
		}
		p, err := strconv.ParseUint(port, 16, 16)
		if err != nil {
			return nil, errFormat
		}
		_, rxq, ok := strings.Cut(fs[4], ":")
		if !ok {
			return nil, errFormat
		}
		q, err := strconv.ParseUint(rxq, 16, 64)
		if err != nil {
			return nil, errFormat
		}
		d, err := strconv.ParseUint(fs[len(fs)-1], 10, 64)
		if err != nil {
			return nil, errFormat
		}
		out = append(out, UDPSocket{Port: uint16(p), RxQueue: q, Drops: d})
	}
	if header {
		return nil, errFormat
	}
	return out, nil
}

// NetDev is one interface's line of /proc/net/dev, the drop counters.
type NetDev struct {
	Name                      string
	RxPackets, RxErrs, RxDrop uint64
	TxPackets, TxErrs, TxDrop uint64
}

// ParseNetDev reads /proc/net/dev: two header lines, then per interface
// "name: " and 16 counters (8 receive: bytes packets errs drop fifo frame
// compressed multicast; 8 transmit: bytes packets errs drop fifo colls
// carrier compressed).
func ParseNetDev(b []byte) ([]NetDev, error) {
	var out []NetDev
	for line := range bytes.Lines(b) {
		name, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok || bytes.Contains(name, []byte("|")) {
			continue // a header line
		}
		fs := strings.Fields(string(rest))
		if len(fs) < 16 {
			return nil, errFormat
		}
		var v [16]uint64
		for i := range v {
			n, err := strconv.ParseUint(fs[i], 10, 64)
			if err != nil {
				return nil, errFormat
			}
			v[i] = n
		}
		out = append(out, NetDev{Name: strings.TrimSpace(string(name)),
			RxPackets: v[1], RxErrs: v[2], RxDrop: v[3],
			TxPackets: v[9], TxErrs: v[10], TxDrop: v[11]})
	}
	if out == nil {
		return nil, errFormat
	}
	return out, nil
}

// ParseSoftnetDropped sums the second column of /proc/net/softnet_stat
// (one line per CPU, hexadecimal): packets dropped because the CPU's
// input backlog (netdev_max_backlog) was full.
func ParseSoftnetDropped(b []byte) (uint64, error) {
	var sum uint64
	lines := 0
	for line := range bytes.Lines(b) {
		fs := strings.Fields(string(line))
		if len(fs) == 0 {
			continue
		}
		if len(fs) < 2 {
			return 0, errFormat
		}
		n, err := strconv.ParseUint(fs[1], 16, 32)
		if err != nil {
			return 0, errFormat
		}
		sum += n
		lines++
	}
	if lines == 0 {
		return 0, errFormat
	}
	return sum, nil
}

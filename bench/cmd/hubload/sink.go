//go:build linux

package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"

	"golang.org/x/net/ipv4"
)

// The sink, a process of its own in the hub's namespace: it receives the
// probes, through the hub's TUN (addressed to the hub's tunnel address)
// and on the plain path alike, counts them per peer and sequence number,
// records their one-way times, and sends pings back. The tool reads and
// resets its counts over a TCP connection on the plain path ("report").

// Bounds of what the sink keeps: a sequence number above maxSeq is
// counted but not checked for gaps, a peer id above maxPeers is ignored,
// and at most maxSamples one-way times and maxMissing missing sequence
// numbers per peer are kept per report.
const (
	maxSeq     = 1 << 22
	maxPeers   = 1 << 17
	maxSamples = 4 << 20
	maxMissing = 512
	sinkBatch  = 64
)

type peerRecv struct {
	n    uint64
	max  uint64
	seen []uint64 // bitset of sequence numbers
}

type sinkState struct {
	mu      sync.Mutex
	peers   map[uint32]*peerRecv
	bytes   uint64
	n       uint64
	echoes  uint64
	samples []int64
	ignored uint64
	// since is the CLOCK_MONOTONIC time of the last report: a probe sent
	// before it belongs to the phase that report closed, and arrived
	// after its counts were taken. It is counted as stale, not as the
	// new phase's.
	since int64
	stale uint64
}

// peerReport is one peer's counts in a report.
type peerReport struct {
	ID      uint32   `json:"id"`
	N       uint64   `json:"n"`
	Max     uint64   `json:"max"`
	Missing []uint64 `json:"missing,omitempty"`
	// MissingN counts every gap below Max (Missing holds the first
	// maxMissing of them).
	MissingN uint64 `json:"missing_n"`
}

type sinkReport struct {
	Peers   []peerReport `json:"peers"`
	N       uint64       `json:"n"`
	IPBytes uint64       `json:"ip_bytes"`
	Echoes  uint64       `json:"echoes"`
	Ignored uint64       `json:"ignored"`
	// Stale counts probes sent before the previous report that arrived
	// after it: late for the phase they were sent in.
	Stale uint64 `json:"stale"`
	// One-way times of the report's probes, ns.
	LatN   int     `json:"lat_n"`
	LatP50 float64 `json:"lat_p50_ns"`
	LatP99 float64 `json:"lat_p99_ns"`
}

func (st *sinkState) note(b []byte, now int64) (echo bool) {
	pr, err := parseProbe(b)
	st.mu.Lock()
	defer st.mu.Unlock()
	if err != nil || pr.peer >= maxPeers {
		st.ignored++
		return false
	}
	if pr.sent < st.since {
		st.stale++
		return pr.flags&flagEcho != 0
	}
	st.n++
	st.bytes += uint64(len(b) + ipv4Header + udpHeader)
	if len(st.samples) < maxSamples {
		st.samples = append(st.samples, now-pr.sent)
	}
	r := st.peers[pr.peer]
	if r == nil {
		r = &peerRecv{}
		st.peers[pr.peer] = r
	}
	r.n++
	r.max = max(r.max, pr.seq)
	if pr.seq < maxSeq {
		w := int(pr.seq / 64)
		if w >= len(r.seen) {
			r.seen = append(r.seen, make([]uint64, w+1-len(r.seen))...)
		}
		r.seen[w] |= 1 << (pr.seq % 64)
	}
	if pr.flags&flagEcho != 0 {
		st.echoes++
		return true
	}
	return false
}

// report returns the counts since the last report and starts afresh.
func (st *sinkState) report() sinkReport {
	st.mu.Lock()
	peers, samples := st.peers, st.samples
	rep := sinkReport{N: st.n, IPBytes: st.bytes, Echoes: st.echoes, Ignored: st.ignored, Stale: st.stale}
	st.peers, st.samples = map[uint32]*peerRecv{}, nil
	st.n, st.bytes, st.echoes, st.ignored, st.stale = 0, 0, 0, 0, 0
	st.since = monoNow()
	st.mu.Unlock()
	for id, r := range peers {
		pr := peerReport{ID: id, N: r.n, Max: r.max}
		// Gaps are looked for below maxSeq and within the bitset (a
		// peer whose probes all carried larger numbers has none).
		for s := uint64(0); s < min(r.max, maxSeq, uint64(len(r.seen))*64); s++ {
			if r.seen[s/64]&(1<<(s%64)) == 0 {
				pr.MissingN++
				if len(pr.Missing) < maxMissing {
					pr.Missing = append(pr.Missing, s)
				}
			}
		}
		rep.Peers = append(rep.Peers, pr)
	}
	// JSON has no NaN: without samples the percentiles stay 0 (LatN
	// says there were none).
	if rep.LatN = len(samples); rep.LatN > 0 {
		rep.LatP50 = percentile(samples, 50)
		rep.LatP99 = percentile(samples, 99)
	}
	return rep
}

// runSink serves probes on udpAddr and reports on ctlAddr until told to
// quit.
func runSink(udpAddr, ctlAddr string) error {
	pc, err := net.ListenPacket("udp4", udpAddr)
	if err != nil {
		return err
	}
	defer pc.Close()
	if err := forceRecvBuffer(pc.(*net.UDPConn), 16<<20); err != nil {
		return err
	}
	ln, err := net.Listen("tcp4", ctlAddr)
	if err != nil {
		return err
	}
	defer ln.Close()
	st := &sinkState{peers: map[uint32]*peerRecv{}}
	go serveProbes(ipv4.NewPacketConn(pc), st)
	fmt.Println("ready")
	for {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		if quit := serveControl(c, st); quit {
			return nil
		}
	}
}

func serveProbes(pc *ipv4.PacketConn, st *sinkState) {
	msgs := make([]ipv4.Message, sinkBatch)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{make([]byte, 2048)}
	}
	for {
		n, err := pc.ReadBatch(msgs, 0)
		if err != nil {
			return
		}
		now := monoNow()
		for _, m := range msgs[:n] {
			b := m.Buffers[0][:m.N]
			if st.note(b, now) {
				_, _ = pc.WriteTo(b, nil, m.Addr)
			}
		}
	}
}

// serveControl answers one control connection's commands; it reports
// whether the sink is to quit.
func serveControl(c net.Conn, st *sinkState) bool {
	defer c.Close()
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		switch sc.Text() {
		case "report":
			if err := json.NewEncoder(c).Encode(st.report()); err != nil {
				return false
			}
		case "quit":
			return true
		default:
			fmt.Fprintln(c, `{"error":"unknown command"}`)
		}
	}
	return false
}

// forceRecvBuffer sets SO_RCVBUFFORCE (root), so that a burst the hub
// writes to its TUN at once is not lost in the sink's own socket, which
// would count as the hub's loss.
func forceRecvBuffer(c *net.UDPConn, n int) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, n)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return os.NewSyscallError("setsockopt SO_RCVBUFFORCE", err)
	}
	return nil
}

// sinkClient is the tool's connection to the sink.
type sinkClient struct {
	c   *net.TCPConn
	dec *json.Decoder
}

func dialSink(addr string) (*sinkClient, error) {
	c, err := net.Dial("tcp4", addr)
	if err != nil {
		return nil, err
	}
	return &sinkClient{c: c.(*net.TCPConn), dec: json.NewDecoder(c)}, nil
}

func (sc *sinkClient) report() (sinkReport, error) {
	var rep sinkReport
	if _, err := fmt.Fprintln(sc.c, "report"); err != nil {
		return rep, err
	}
	err := sc.dec.Decode(&rep)
	return rep, err
}

//go:build linux

package main

import (
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/current-vpn/current/bench/internal/procstat"
)

// run measures the load figures with o.loadPeers, and the restart
// figures for each of o.restartPeers (the load's hub and fleet are
// reused for its own count).
func (r *runner) run() error {
	r.sum = summary{peers: r.o.loadPeers, aggVsSingle: math.NaN(), jain: math.NaN(), updateLoss: -1, restart10kS: math.NaN(), resumedShare: math.NaN()}
	counts := r.o.restartPeers
	if r.o.loadPeers > 0 {
		h, f, err := r.bringUp(r.o.loadPeers)
		if err != nil {
			return err
		}
		err = r.load(h, f)
		if err == nil && slices.Contains(counts, r.o.loadPeers) {
			err = r.restarts(h, f)
			counts = slices.DeleteFunc(slices.Clone(counts), func(n int) bool { return n == r.o.loadPeers })
		}
		f.close()
		r.teardown(h)
		if err != nil {
			return err
		}
	}
	for _, n := range counts {
		h, f, err := r.bringUp(n)
		if err != nil {
			return err
		}
		err = r.restarts(h, f)
		f.close()
		r.teardown(h)
		if err != nil {
			return err
		}
	}
	r.print()
	return nil
}

// teardown stops a hub whose state is not needed again: with kill -9,
// since SIGTERM makes a hub with thousands of routes take minutes (see
// README), unless it is profiled, which only SIGTERM writes.
func (r *runner) teardown(h *hub) {
	sig := syscall.SIGKILL
	if r.o.profile {
		sig = syscall.SIGTERM
	}
	h.stop(sig)
}

// bringUp starts a hub with n peers and establishes every one.
func (r *runner) bringUp(n int) (*hub, *fleet, error) {
	dir := filepath.Join(r.o.work, fmt.Sprintf("hub-%d", n))
	if _, err := writeHubConfig(dir, r.o.suite, r.hubKey, r.pubs[:n], time.Hour); err != nil {
		return nil, nil, err
	}
	h := &hub{bin: r.o.currentd, ns: r.o.nsHub, dir: dir}
	if r.o.profile {
		h.profile = filepath.Join(dir, "cpu.pprof")
	}
	say("n=%d: starting currentd (%s)", n, dir)
	if _, err := h.start(); err != nil {
		return nil, nil, err
	}
	time.Sleep(time.Second)
	_, rssConf := h.usage()
	privs := make([][]byte, n)
	for i := range privs {
		privs[i] = r.keys[i].Bytes()
	}
	hubUDP := &net.UDPAddr{IP: net.ParseIP(r.o.hubAddr), Port: hubListenPort}
	f, err := newFleet(r.suite, hubUDP, r.hubPub, netip.MustParseAddr(hubTunAddr), privs)
	if err != nil {
		h.stop(syscall.SIGTERM)
		return nil, nil, err
	}
	toolCPU0, _ := procstat.CPU(os.Getpid())
	hubCPU0, _ := h.usage()
	took, err := f.establish(r.o.window, 10*time.Minute)
	if err != nil {
		f.close()
		h.stop(syscall.SIGTERM)
		return nil, nil, err
	}
	hubCPU1, rssUp := h.usage()
	toolCPU1, _ := procstat.CPU(os.Getpid())
	hc, err := h.counts()
	if err != nil {
		return nil, nil, err
	}
	r.add(fmt.Sprintf("n=%d handshakes", n), fmt.Sprintf("%.1f s (%.0f/s)", took.Seconds(), float64(n)/took.Seconds()),
		fmt.Sprintf("hub CPU %.1f s, tool CPU %.1f s; %d cookie challenges; %d retransmission timers", (hubCPU1-hubCPU0).Seconds(), (toolCPU1-toolCPU0).Seconds(), hc.cookies, f.timerCalls.Load()))
	r.add(fmt.Sprintf("n=%d hub RSS", n), fmt.Sprintf("%.1f MiB configured, %.1f MiB established", float64(rssConf)/1024, float64(rssUp)/1024),
		fmt.Sprintf("established idle: %.1f KiB/peer over configured", float64(rssUp-rssConf)/float64(n)))
	h.rssConfigured = rssConf
	return h, f, nil
}

// phase is one load phase's outcome.
type phase struct {
	res             loadResult
	rep             sinkReport
	hubCPU, toolCPU time.Duration
	sinkCPU         time.Duration
	rssMax          int64
	// pktMem is the hub's packet memory (pool, receive slots) at the
	// sample of rssMax.
	pktMem    procstat.PacketMemory
	hubEpochs uint64
	// rcvbufDrops: datagrams the kernel dropped at full UDP receive
	// buffers in the hub's namespace (the hub's socket, or the sink's);
	// replayDrops, epochDrops, macDrops: records the hub's sessions
	// dropped: refused by the replay window, of an epoch whose keys
	// they did not hold, failing authentication.
	rcvbufDrops, replayDrops, epochDrops, macDrops uint64
	// sentDgrams: UDP datagrams sent in the hub's namespace (the hub's:
	// under one-way load, its keepalives).
	sentDgrams uint64
	// hubRx: packets the hub's sessions handed to its TUN; queueFull,
	// badSource: the hub's other drops; late: probes of the phase the
	// sink counted only after the phase's report.
	hubRx, queueFull, badSource, late uint64
	// noBuffer, unknownIndex: the hub's device-wide drops, with every
	// packet buffer in use, and of records for no session it holds.
	noBuffer, unknownIndex uint64
	// hubNet, toolNet: the kernel's drop counters of the hub's and the
	// tool's namespaces over the phase.
	hubNet, toolNet procstat.NetCounters
	// drained: how long the phase waited for the hub to read the
	// earlier phase's datagrams (drainHub).
	drained time.Duration
	// epochSeqs are the peers' epoch-change seqs during the phase.
	epochSeqs        map[int][]uint64
	binSeqs          map[int][]uint64
	delivered, lost  uint64
	pps, mbps, cpuGB float64
}

// measure runs one load phase and reads the sink's counts after it.
func (r *runner) measure(h *hub, f *fleet, spec loadSpec) (phase, error) {
	var ph phase
	ph.drained = drainHub(h)
	if _, err := r.sink.report(); err != nil { // start afresh
		return ph, err
	}
	hc0, err := h.counts()
	if err != nil {
		return ph, fmt.Errorf("the hub's counts before the phase: %w", err)
	}
	hub0, _ := h.usage()
	tool0, _ := procstat.CPU(os.Getpid())
	sink0, _ := procstat.CPU(r.sinkPID)
	rcvbuf0, _ := procstat.UDPRcvbufErrors(h.pid())
	out0, _ := procstat.UDPCounter(h.pid(), "OutDatagrams")
	hubNet0 := procstat.ReadNetCounters(h.pid(), hubListenPort, sinkPort)
	toolNet0 := procstat.ReadNetCounters(os.Getpid())
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the hub's peak RSS during the phase
		defer wg.Done()
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if _, kb := h.usage(); kb > ph.rssMax {
					ph.rssMax = kb
					ph.pktMem, _ = procstat.PacketMemoryOf(h.pid())
				}
			}
		}
	}()
	res, err := runLoad(f, spec)
	close(stop)
	wg.Wait()
	if err != nil {
		return ph, err
	}
	time.Sleep(500 * time.Millisecond) // what is still queued arrives
	hub1, _ := h.usage()
	tool1, _ := procstat.CPU(os.Getpid())
	sink1, _ := procstat.CPU(r.sinkPID)
	rcvbuf1, _ := procstat.UDPRcvbufErrors(h.pid())
	out1, _ := procstat.UDPCounter(h.pid(), "OutDatagrams")
	ph.sentDgrams = out1 - out0
	ph.rcvbufDrops = rcvbuf1 - rcvbuf0
	rep, err := r.sink.report()
	if err != nil {
		return ph, err
	}
	// What arrives later still was not lost: counted apart (the sink
	// takes every probe sent before its last report as late). The hub's
	// counters are read after that, so that they hold every packet the
	// sink counted.
	time.Sleep(lateWait)
	lateRep, err := r.sink.report()
	if err != nil {
		return ph, err
	}
	ph.late = lateRep.Stale + lateRep.N
	hc1, err := h.counts()
	if err != nil {
		return ph, fmt.Errorf("the hub's counts after the phase: %w", err)
	}
	ph.replayDrops, ph.epochDrops, ph.macDrops = hc1.replayDrops-hc0.replayDrops, hc1.epochDrops-hc0.epochDrops, hc1.macDrops-hc0.macDrops
	ph.hubRx, ph.queueFull, ph.badSource = hc1.rxPackets-hc0.rxPackets, hc1.queueFull-hc0.queueFull, hc1.badSource-hc0.badSource
	ph.noBuffer = hc1.noBuffer - hc0.noBuffer
	ph.unknownIndex = hc1.refused["unknown_index"] - hc0.refused["unknown_index"]
	ph.hubNet = procstat.ReadNetCounters(h.pid(), hubListenPort, sinkPort).Sub(hubNet0)
	ph.toolNet = procstat.ReadNetCounters(os.Getpid()).Sub(toolNet0)
	ph.res, ph.rep = res, rep
	ph.epochSeqs, ph.binSeqs = map[int][]uint64{}, map[int][]uint64{}
	for _, p := range spec.peers {
		p.mu.Lock()
		ph.epochSeqs[p.id] = slices.Clone(p.epochSeqs)
		ph.binSeqs[p.id] = slices.Clone(p.binSeqs)
		p.mu.Unlock()
	}
	ph.hubCPU, ph.toolCPU, ph.sinkCPU = hub1-hub0, tool1-tool0, sink1-sink0
	ph.hubEpochs = hc1.epochChanges - hc0.epochChanges
	for _, s := range res.sent {
		ph.lost += s
	}
	for _, p := range rep.Peers {
		ph.delivered += p.N
	}
	ph.lost -= min(ph.lost, ph.delivered)
	secs := res.elapsed.Seconds()
	ph.pps = float64(ph.delivered) / secs
	ph.mbps = float64(rep.IPBytes) * 8 / secs / 1e6
	ph.cpuGB = ph.hubCPU.Seconds() / (float64(rep.IPBytes) / 1e9)
	return ph, nil
}

// packetMemory describes the phase's peak RSS: the whole daemon's, and
// what of it the packet buffers (pool, receive slots) held.
func (ph phase) packetMemory(h *hub, n int) string {
	return fmt.Sprintf("peak %.1f MiB, minus %.1f MiB with the peers configured and idle; whole daemon %.1f KiB/peer; at the peak the buffer pool had %.1f MiB resident and the receive slots %.1f MiB, so %.1f KiB/peer without them",
		float64(ph.rssMax)/1024, float64(h.rssConfigured)/1024, float64(ph.rssMax)/float64(n),
		float64(ph.pktMem.PoolKB)/1024, float64(ph.pktMem.SlotsKB)/1024, float64(ph.rssMax-h.rssConfigured-ph.pktMem.PoolKB-ph.pktMem.SlotsKB)/float64(n))
}

// drainHub waits, at most drainMax, until the hub has read what its
// socket holds (a phase after an unpaced one would otherwise start with
// the hub seconds behind, and lose what the earlier phase left), and
// returns how long that took.
func drainHub(h *hub) time.Duration {
	t0 := time.Now()
	calm := 0
	for time.Since(t0) < drainMax && calm < 2 {
		q, err := procstat.UDPRxQueue(h.pid(), hubListenPort)
		if err != nil {
			break
		}
		if q <= drainedBytes {
			calm++
		} else {
			calm = 0
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(t0)
}

// drainMax bounds drainHub's wait; drainedBytes is a socket queue that
// counts as drained.
const (
	drainMax     = 10 * time.Second
	drainedBytes = 64 << 10
)

// lateWait is how long after a phase's report the sink still counts its
// probes as late rather than lost.
const lateWait = time.Second

// rates are the per-peer delivered rates of a phase, one per sending
// peer (a peer the sink never heard from counts 0).
func (ph phase) rates(peers []*peer) []float64 {
	by := map[uint32]uint64{}
	for _, p := range ph.rep.Peers {
		by[p.ID] = p.N
	}
	out := make([]float64, len(peers))
	for i, p := range peers {
		out[i] = float64(by[uint32(p.id)]) / ph.res.elapsed.Seconds()
	}
	return out
}

func (r *runner) load(h *hub, f *fleet) error {
	n := len(f.peers)
	d := r.o.duration
	if r.o.manyOnly {
		// Profiling the many-peer data path: nothing else in the profile.
		say("%d peers, unpaced, %v", n, d)
		all, err := r.measure(h, f, loadSpec{peers: f.peers, duration: d, senders: r.o.senders})
		r.add(fmt.Sprintf("%d peers aggregate", n), fmt.Sprintf("%.0f pkt/s", all.pps), fmt.Sprintf("hub %.2f CPU s/GB; hub sent %.0f datagrams/s (keepalives)", all.cpuGB, float64(all.sentDgrams)/all.res.elapsed.Seconds()))
		r.add(fmt.Sprintf("%d peers hub RSS under load", n), fmt.Sprintf("%.1f KiB/peer", float64(all.rssMax-h.rssConfigured)/float64(n)), all.packetMemory(h, n))
		return err
	}
	say("single peer, unpaced, %v", d)
	single, err := r.measure(h, f, loadSpec{peers: f.peers[:1], duration: d, senders: 1})
	if err != nil {
		return err
	}
	r.add("single peer", fmt.Sprintf("%.0f pkt/s, %.0f Mbit/s", single.pps, single.mbps),
		fmt.Sprintf("hub %.2f CPU s/GB; sent %d, lost %d (overload); tool CPU %.1f s, sink %.1f s", single.cpuGB, single.res.sent[0], single.lost, single.toolCPU.Seconds(), single.sinkCPU.Seconds()))

	say("single peer, unpaced, %d flows, %v", n, d)
	singleFlows, err := r.measure(h, f, loadSpec{peers: f.peers[:1], duration: d, senders: 1, flows: n})
	if err != nil {
		return err
	}
	r.add(fmt.Sprintf("single peer, %d flows", n), fmt.Sprintf("%.0f pkt/s, %.0f Mbit/s", singleFlows.pps, singleFlows.mbps),
		fmt.Sprintf("hub %.2f CPU s/GB; as many UDP flows as there are peers below, so that the TUN's UDP GRO merges none (it merges the one flow above)", singleFlows.cpuGB))

	say("%d peers, unpaced, %v", n, d)
	all, err := r.measure(h, f, loadSpec{peers: f.peers, duration: d, senders: r.o.senders})
	if err != nil {
		return err
	}
	j := jain(all.rates(f.peers))
	r.add(fmt.Sprintf("%d peers aggregate", n), fmt.Sprintf("%.0f pkt/s, %.0f Mbit/s", all.pps, all.mbps),
		fmt.Sprintf("= %.2f of the single peer (%.2f of the single peer with %d flows); hub %.2f CPU s/GB (%.1f s), tool %.1f s, sink %.1f s; lost %d of %d (overload; %d at full UDP receive buffers); hub sent %.0f datagrams/s (keepalives)",
			all.pps/single.pps, all.pps/singleFlows.pps, n, all.cpuGB, all.hubCPU.Seconds(), all.toolCPU.Seconds(), all.sinkCPU.Seconds(), all.lost, all.lost+all.delivered, all.rcvbufDrops, float64(all.sentDgrams)/all.res.elapsed.Seconds()))
	r.add(fmt.Sprintf("%d peers Jain's index", n), fmt.Sprintf("%.3f", j), "per-peer delivered rates of the unpaced run")
	r.add(fmt.Sprintf("%d peers hub RSS under load", n), fmt.Sprintf("%.1f KiB/peer", float64(all.rssMax-h.rssConfigured)/float64(n)),
		all.packetMemory(h, n))
	r.sum.aggVsSingle, r.sum.jain = all.pps/single.pps, j
	if r.o.unpacedOnly {
		return nil
	}

	rate := all.pps * r.o.lossLoad / 100
	schedule := "first updates spread over the interval"
	if r.o.updateSync {
		schedule = "first updates synchronized (-update-sync)"
	}
	say("%d peers paced at %.0f pkt/s with every peer updating every %v (%s), %v", n, rate, r.o.update, schedule, d)
	f.updateSync.Store(r.o.updateSync)
	f.updateEvery.Store(int64(r.o.update))
	upd, err := r.measure(h, f, loadSpec{peers: f.peers, rate: rate, duration: d, senders: r.o.senders})
	f.updateEvery.Store(0)
	if err != nil {
		return err
	}
	settleEpochs(f) // the last updates complete before the control run
	say("%d peers paced at %.0f pkt/s without updates (control), %v", n, rate, d)
	ctrl, err := r.measure(h, f, loadSpec{peers: f.peers, rate: rate, duration: d, senders: r.o.senders})
	if err != nil {
		return err
	}
	ul := attribute(upd, f, rate/float64(n))
	cl := attribute(ctrl, f, rate/float64(n))
	ul.late, cl.late = upd.late, ctrl.late
	r.add("epoch updates during the paced run", fmt.Sprintf("%d at the peers, %d counted by the hub", ul.epochs, upd.hubEpochs),
		fmt.Sprintf("%s; hub CPU %.1f s (control run without updates: %.1f s, %d and %d epoch changes): %.2f ms per epoch change; tool CPU %.1f s (control %.1f s): %.2f ms per epoch change",
			schedule, upd.hubCPU.Seconds(), ctrl.hubCPU.Seconds(), cl.epochs, ctrl.hubEpochs, (upd.hubCPU-ctrl.hubCPU).Seconds()*1e3/float64(max(upd.hubEpochs, 1)),
			upd.toolCPU.Seconds(), ctrl.toolCPU.Seconds(), (upd.toolCPU-ctrl.toolCPU).Seconds()*1e3/float64(max(ul.epochs, 1))))
	lost := updateLoss(ul, cl)
	r.add("lost to epoch updates", fmt.Sprintf("%.0f of %d", lost, upd.delivered+upd.lost),
		fmt.Sprintf("the larger of: losses within -0.1..+0.5 s of the peer's own epoch change beyond their share of the run's losses (%d in windows, %.0f expected by chance, of %d checked: %.0f), and all losses beyond the control run's (%d - %d), less those that arrived late (%d and %d); full UDP receive buffers in the hub's namespace %d, the hub's drops: replay window %d, unknown epoch %d, bad MAC %d; probes the tool's peers failed to seal or send %d; control run %d, %d, %d, %d, %d",
			ul.inWindows, ul.expected, ul.checked, max(ul.excess(), 0), ul.all, cl.all, ul.late, cl.late, upd.rcvbufDrops, upd.replayDrops, upd.epochDrops, upd.macDrops, upd.res.errors,
			ctrl.rcvbufDrops, ctrl.replayDrops, ctrl.epochDrops, ctrl.macDrops, ctrl.res.errors))
	r.sum.updateLoss = int64(math.Round(lost))
	r.add("where the update run's losses went", fmt.Sprint(ul.all), pathOf(upd).String())
	r.add("where the control run's losses went", fmt.Sprint(cl.all), pathOf(ctrl).String())
	bins := int(d / timelineBin)
	lt, et := timeline(upd, f, rate/float64(n), bins)
	r.add("update run by 0.5 s: lost/epoch changes/sent", fmtTimeline(lt, et, upd.res.sentBy), "probes lost (of those the sink listed), epoch changes of all peers and probes sent, by send time")

	say("plain path (no tunnel) paced at %.0f pkt/s, %v", rate, d)
	plainSink := &net.UDPAddr{IP: net.ParseIP(r.o.hubAddr), Port: sinkPort}
	plain, err := r.measure(h, f, loadSpec{peers: f.peers, rate: rate, duration: d, senders: r.o.senders, plain: true, plainSink: plainSink})
	if err != nil {
		return err
	}
	r.add("one-way time p50 / p99", fmt.Sprintf("tunnel %s / %s, plain %s / %s", us(ctrl.rep.LatP50), us(ctrl.rep.LatP99), us(plain.rep.LatP50), us(plain.rep.LatP99)),
		fmt.Sprintf("added by the hub: p50 %s, p99 %s (control run against the plain path at the same rate)", us(ctrl.rep.LatP50-plain.rep.LatP50), us(ctrl.rep.LatP99-plain.rep.LatP99)))
	return nil
}

// settleEpochs waits until the peers' epoch changes have stopped for a
// second (at most 20 s): updates started at the end of a phase, or
// retransmitted on a loaded machine, must not land in the next one.
func settleEpochs(f *fleet) {
	_, _, _, last := f.outcomes()
	stable := time.Now()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		if _, _, _, e := f.outcomes(); e != last {
			last, stable = e, time.Now()
		} else if time.Since(stable) >= time.Second {
			return
		}
	}
}

func us(ns float64) string { return fmt.Sprintf("%.0f µs", ns/1e3) }

// lossSplit is a phase's lost probes, split by when they were sent.
type lossSplit struct {
	// all counts every probe lost; checked those whose sequence number
	// the sink reported (all but gaps beyond its per-peer list).
	all, checked uint64
	// inWindows: checked probes sent within -0.1 s..+0.5 s of an epoch
	// change of their peer; expected: how many of the checked would fall
	// there if losses ignored the peer's epoch changes (each peer's
	// checked losses times the share of its probes inside windows).
	inWindows uint64
	expected  float64
	epochs    int
	// late: of all, those the sink counted after the phase's report.
	late uint64
}

// excess is the loss that the epoch changes themselves explain: what the
// windows hold beyond their share of the background loss.
func (l lossSplit) excess() float64 { return float64(l.inWindows) - l.expected }

// updateLoss is the figure reported as lost to epoch updates: the larger
// of two estimates, never below zero. The windows' excess alone reads low
// when updates are frequent, because the windows then cover most of the
// run and the chance share swallows the updates' own loss; the run's
// losses beyond the control run's (same load, no updates) catch that case
// and read high only by the control run's own noise.
//
// A probe that arrived late (after the phase's report, within lateWait)
// was delivered, if slowly: it is not lost, and neither estimate counts
// it.
func updateLoss(upd, ctrl lossSplit) float64 {
	lost := float64(upd.all - min(upd.late, upd.all))
	ctrlLost := float64(ctrl.all - min(ctrl.late, ctrl.all))
	return max(min(upd.excess(), lost), lost-ctrlLost, 0)
}

// attribute splits a phase's losses by the peers' epoch changes (from the
// seqs each peer recorded at its changes and its paced per-peer rate).
func attribute(ph phase, f *fleet, perPeerRate float64) lossSplit {
	var l lossSplit
	before, after := uint64(math.Ceil(0.1*perPeerRate)), uint64(math.Ceil(0.5*perPeerRate))
	eachLoss(ph, f, func(p *peer, n uint64, missing []uint64, all uint64) {
		seqs := ph.epochSeqs[p.id]
		l.epochs += len(seqs)
		l.all += all
		l.checked += uint64(len(missing))
		for _, m := range missing {
			if inWindow(m, seqs, before, after) {
				l.inWindows++
			}
		}
		if n > 0 {
			l.expected += float64(len(missing)) * float64(windowSpan(seqs, before, after, n)) / float64(n)
		}
	})
	return l
}

// eachLoss calls fn for every peer with the probes it sent in the phase
// (n), the sequence numbers of those the sink did not count (all but the
// gaps beyond its per-peer list) and how many it did not count in all.
func eachLoss(ph phase, f *fleet, fn func(p *peer, n uint64, missing []uint64, all uint64)) {
	sent := map[uint32]uint64{}
	for i, p := range f.peers {
		if i < len(ph.res.sent) {
			sent[uint32(p.id)] = ph.res.sent[i]
		}
	}
	got := map[uint32]peerReport{}
	for _, p := range ph.rep.Peers {
		got[p.ID] = p
	}
	for _, p := range f.peers {
		n := sent[uint32(p.id)]
		pr, ok := got[uint32(p.id)]
		var missing []uint64
		var all uint64
		if ok {
			missing = pr.Missing
			// Lost after the last one that arrived.
			for s := pr.Max + 1; s < n; s++ {
				missing = append(missing, s)
			}
			all = pr.MissingN + n - min(n, pr.Max+1)
		} else {
			for s := uint64(0); s < n; s++ {
				missing = append(missing, s)
			}
			all = n
		}
		fn(p, n, missing, all)
	}
}

func inWindow(m uint64, seqs []uint64, before, after uint64) bool {
	for _, e := range seqs {
		if m+before >= e && m <= e+after {
			return true
		}
	}
	return false
}

// windowSpan is how many of the sequence numbers 0..n-1 lie in a window.
func windowSpan(seqs []uint64, before, after, n uint64) uint64 {
	var span, end uint64 // end: first seq past the windows counted so far
	for _, e := range slices.Sorted(slices.Values(seqs)) {
		lo, hi := max(e-min(e, before), end), min(e+after+1, n)
		if hi > lo {
			span += hi - lo
			end = hi
		}
	}
	return span
}

func (r *runner) print() {
	w := 0
	for _, row := range r.rows {
		w = max(w, len(row.name))
	}
	fmt.Println("hub at scale (bench/cmd/hubload)")
	for _, row := range r.rows {
		fmt.Printf("  %-*s  %s\n  %-*s  %s\n", w, row.name, row.value, w, "", strings.TrimSpace(row.note))
	}
	fmt.Println(r.sum.line())
}

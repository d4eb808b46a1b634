//go:build linux

package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/current-vpn/current/bench/internal/procstat"
)

// Where a phase's lost probes went. A probe crosses, in order: the
// tool's sender (it may find no session, or fail to seal or send), the
// network between the namespaces and the hub's UDP socket, the hub's
// session and queues, the hub's TUN, and the sink's socket. The counters
// at each step (the tool's own, the hub's per-peer counters over its
// control socket, the kernel's of both namespaces, the sink's) split the
// loss between the steps; what no counter explains is left over at the
// step where it happened, so that a report says where to look.

// lossPath is one phase's probes at each step.
type lossPath struct {
	sent, toolFailed uint64
	// skipped: never sent (nor numbered), the tool behind its schedule.
	skipped uint64
	// hubRx: opened by the hub's sessions and handed to its TUN.
	hubRx uint64
	// delivered: counted by the sink in time; late: counted by the sink
	// after the phase's report (sent during the phase).
	delivered, late uint64
	// The hub's own drops by reason.
	hubQueueFull, hubReplay, hubEpoch, hubMAC, hubBadSource uint64
	hubNoBuffer, hubUnknownIndex                            uint64
	// Kernel drops during the phase: the hub's UDP socket, the sink's,
	// in the tool's namespace (its sockets, the veth) and in the hub's
	// namespace besides those sockets.
	hubSocket, sinkSocket uint64
	toolNet, hubNet       procstat.NetCounters
	drained               time.Duration
}

// beforeTUN is what left the tool and never reached the hub's TUN;
// afterTUN what the hub handed to its TUN and the sink never counted,
// late or not. A negative figure means the hub counted packets that the
// tool did not send in the phase (a late one from the phase before).
func (l lossPath) beforeTUN() int64 {
	return int64(l.sent) - int64(l.toolFailed) - int64(l.hubRx)
}

func (l lossPath) afterTUN() int64 {
	return int64(l.hubRx) - int64(l.delivered) - int64(l.late)
}

// hubDropped is what the hub's sessions and queues said they dropped.
func (l lossPath) hubDropped() uint64 {
	return l.hubQueueFull + l.hubReplay + l.hubEpoch + l.hubMAC + l.hubBadSource + l.hubNoBuffer + l.hubUnknownIndex
}

// String is the split, one clause per step.
func (l lossPath) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "waited %.1f s for the hub to read what the phase before left; ", l.drained.Seconds())
	fmt.Fprintf(&b, "sent %d (%d more skipped, the tool behind its schedule); not sent by the tool %d; reached the hub's TUN %d", l.sent, l.skipped, l.toolFailed, l.hubRx)
	fmt.Fprintf(&b, "; lost before the TUN %d (hub's socket full %d; hub dropped: no buffer %d, unknown index %d, queue full %d, replay %d, unknown epoch %d, bad MAC %d, bad source %d)",
		l.beforeTUN(), l.hubSocket, l.hubNoBuffer, l.hubUnknownIndex, l.hubQueueFull, l.hubReplay, l.hubEpoch, l.hubMAC, l.hubBadSource)
	fmt.Fprintf(&b, "; lost after the TUN %d (sink's socket full %d); arrived late %d", l.afterTUN(), l.sinkSocket, l.late)
	fmt.Fprintf(&b, "; kernel drops, hub namespace: %s; tool namespace: %s", l.hubNet, l.toolNet)
	return b.String()
}

// pathOf fills a phase's lossPath from its counters.
func pathOf(ph phase) lossPath {
	l := lossPath{
		toolFailed: uint64(ph.res.errors), skipped: uint64(ph.res.behind), hubRx: ph.hubRx,
		delivered: ph.delivered, late: ph.late,
		hubQueueFull: ph.queueFull, hubReplay: ph.replayDrops, hubEpoch: ph.epochDrops,
		hubMAC: ph.macDrops, hubBadSource: ph.badSource,
		hubNoBuffer: ph.noBuffer, hubUnknownIndex: ph.unknownIndex,
		toolNet: ph.toolNet, hubNet: procstat.NetCounters{}, drained: ph.drained,
	}
	for _, s := range ph.res.sent {
		l.sent += s
	}
	for k, v := range ph.hubNet {
		switch k {
		case hubSocketKey:
			l.hubSocket = v
		case sinkSocketKey:
			l.sinkSocket = v
		default:
			l.hubNet[k] = v
		}
	}
	return l
}

// The keys of the two sockets of the hub's namespace that a probe
// crosses, in procstat.ReadNetCounters.
var (
	hubSocketKey  = fmt.Sprintf("udp:%d:drops", hubListenPort)
	sinkSocketKey = fmt.Sprintf("udp:%d:drops", sinkPort)
)

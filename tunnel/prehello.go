package tunnel

import (
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/current-vpn/current/session"
)

// helloAssembler collects the fragments of ClientHellos that span several
// datagrams, before anyone knows whose they are: the KeyPackage that says
// which peer a hello is for is only readable once it is whole. Everything
// here is unauthenticated, so it lives on a budget: bytes and partial
// messages in total and per host, each fragment stored once (the datagram
// copy; the fragment is a slice of it), and a lifetime enforced by the
// device's sweeper, not by the next arrival. A full budget refuses the new
// fragment; what is already held is never evicted by a stranger.
type helloAssembler struct {
	mu      sync.Mutex
	partial map[helloKey]*helloPartial
	hosts   map[netip.Prefix]*hostUse
	bytes   int
}

// The budget. A ClientHello of the largest suite (ML-DSA-65 and ML-KEM-768
// keys, an ML-DSA signature) is under 8 KiB; a host gets room for two of
// them at once in up to four messages (several initiators behind one NAT).
const (
	maxClientHelloLen  = 16 << 10
	preHelloBytes      = 1 << 20
	preHelloMessages   = 256
	preHelloHostBytes  = 32 << 10
	preHelloHostMsgs   = 4
	preHelloLifetime   = 5 * time.Second
	preHelloMaxFrags   = 64
	preHelloSweepEvery = time.Second
)

type helloKey struct {
	src    netip.AddrPort
	sender uint32
	id     uint32
}

type hostUse struct{ bytes, msgs int }

type helloPartial struct {
	start time.Time
	host  netip.Prefix
	total int
	bytes int
	// raw are the fragments' datagrams in arrival order; frags index
	// them by fragment offset.
	raw   [][]byte
	frags map[int][]byte
}

// assembleVerdict says what became of a fragment.
type assembleVerdict uint8

const (
	asmPending  assembleVerdict = iota // stored, message incomplete
	asmComplete                        // the message is whole
	asmBad                             // malformed or inconsistent
	asmOverBudget
)

func newHelloAssembler() *helloAssembler {
	return &helloAssembler{partial: map[helloKey]*helloPartial{}, hosts: map[netip.Prefix]*hostUse{}}
}

// add stores one ClientHello fragment (datagram b, parsed as f) from src.
// When the message is complete it returns its envelope and the datagrams
// of all its fragments, which the caller then owns.
func (a *helloAssembler) add(now time.Time, src netip.AddrPort, b []byte, f session.HandshakeFragment) (assembleVerdict, []byte, [][]byte) {
	if f.Total > maxClientHelloLen || f.Offset+len(f.Data) > f.Total {
		return asmBad, nil, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	k := helloKey{src: src, sender: f.Sender, id: f.MessageID}
	p := a.partial[k]
	host := hostOf(src.Addr())
	use := a.hosts[host]
	if p == nil {
		if len(a.partial) >= preHelloMessages || (use != nil && use.msgs >= preHelloHostMsgs) {
			return asmOverBudget, nil, nil
		}
	} else {
		if p.total != f.Total || len(p.raw) >= preHelloMaxFrags {
			a.dropLocked(k, p)
			return asmBad, nil, nil
		}
		if _, dup := p.frags[f.Offset]; dup {
			return asmPending, nil, nil
		}
	}
	if a.bytes+len(b) > preHelloBytes || (use != nil && use.bytes+len(b) > preHelloHostBytes) || len(b) > preHelloHostBytes {
		return asmOverBudget, nil, nil
	}
	if p == nil {
		p = &helloPartial{start: now, host: host, total: f.Total, frags: map[int][]byte{}}
		a.partial[k] = p
		if use == nil {
			use = new(hostUse)
			a.hosts[host] = use
		}
		use.msgs++
	}
	raw := slices.Clone(b)
	p.raw = append(p.raw, raw)
	p.frags[f.Offset] = raw[len(b)-len(f.Data):]
	p.bytes += len(raw)
	use.bytes += len(raw)
	a.bytes += len(raw)

	env := p.envelope()
	if env == nil {
		return asmPending, nil, nil
	}
	raws := p.raw
	p.raw = nil
	a.dropLocked(k, p)
	return asmComplete, env, raws
}

// envelope is the whole message, or nil while a byte is missing.
func (p *helloPartial) envelope() []byte {
	covered := 0
	offs := make([]int, 0, len(p.frags))
	for off := range p.frags {
		offs = append(offs, off)
	}
	slices.Sort(offs)
	for _, off := range offs {
		if off > covered {
			return nil
		}
		covered = max(covered, off+len(p.frags[off]))
	}
	if covered < p.total {
		return nil
	}
	env := make([]byte, p.total)
	for _, off := range offs {
		copy(env[off:], p.frags[off])
	}
	return env
}

func (a *helloAssembler) dropLocked(k helloKey, p *helloPartial) {
	delete(a.partial, k)
	a.bytes -= p.bytes
	if use := a.hosts[p.host]; use != nil {
		use.bytes -= p.bytes
		use.msgs--
		if use.msgs <= 0 {
			delete(a.hosts, p.host)
		}
	}
	clear(p.raw)
	p.raw, p.frags = nil, nil
}

// expire drops the partial messages older than their lifetime and
// reports how many.
func (a *helloAssembler) expire(now time.Time) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for k, p := range a.partial {
		if now.Sub(p.start) >= preHelloLifetime {
			a.dropLocked(k, p)
			n++
		}
	}
	return n
}

// held is the bytes and messages held now.
func (a *helloAssembler) held() (bytes, msgs int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.bytes, len(a.partial)
}

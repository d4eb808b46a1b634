package session

import (
	"time"
)

// reassembler rebuilds control envelopes from ControlFragments arriving in
// any order, duplicated or not at all. Its memory is bounded: at most
// maxReassembly partial messages, at most capBytes buffered in all, at most
// maxSpans disjoint ranges per message; the oldest partial message makes
// way for a new one, and partial messages expire (expire).
type reassembler struct {
	m     map[reasmKey]*partial
	bytes int
}

// reasmKey is where a fragment belongs: its framing, sender index,
// message id and, for protected fragments, the epoch of the record.
type reasmKey struct {
	plain  bool
	sender uint32
	epoch  uint16
	id     uint32
}

type partial struct {
	buf   []byte
	spans []span // sorted, disjoint, non-adjacent
	start time.Time
}

type span struct{ a, b int }

// add stores one fragment and returns the envelope once it is complete.
func (r *reassembler) add(now time.Time, k reasmKey, total, off int, data []byte, capBytes int) ([]byte, error) {
	if off == 0 && len(data) == total {
		// The common case: an unfragmented message needs no buffer.
		return append([]byte(nil), data...), nil
	}
	if total > capBytes {
		return nil, drop("control message of %d bytes", total)
	}
	p := r.m[k]
	if p == nil {
		for len(r.m) >= maxReassembly || (len(r.m) > 0 && r.bytes+total > capBytes) {
			r.evictOldest()
		}
		if r.m == nil {
			r.m = make(map[reasmKey]*partial)
		}
		p = &partial{buf: make([]byte, total), start: now}
		r.m[k] = p
		r.bytes += total
	} else if len(p.buf) != total {
		return nil, drop("fragment length mismatch")
	}
	copy(p.buf[off:], data)
	if !p.insert(span{off, off + len(data)}) {
		r.remove(k)
		return nil, drop("too many fragments")
	}
	if len(p.spans) == 1 && p.spans[0] == (span{0, total}) {
		r.remove(k)
		return p.buf, nil
	}
	return nil, nil
}

// insert merges s into the span list; false if the list grew too long.
func (p *partial) insert(s span) bool {
	out := p.spans[:0:0]
	placed := false
	for _, x := range p.spans {
		switch {
		case x.b < s.a:
			out = append(out, x)
		case s.b < x.a:
			if !placed {
				out = append(out, s)
				placed = true
			}
			out = append(out, x)
		default:
			s = span{min(s.a, x.a), max(s.b, x.b)}
		}
	}
	if !placed {
		out = append(out, s)
	}
	p.spans = out
	return len(out) <= maxSpans
}

func (r *reassembler) remove(k reasmKey) {
	if p := r.m[k]; p != nil {
		r.bytes -= len(p.buf)
		delete(r.m, k)
	}
}

func (r *reassembler) evictOldest() {
	var old reasmKey
	var t time.Time
	first := true
	for k, p := range r.m {
		if first || p.start.Before(t) || (p.start.Equal(t) && keyLess(k, old)) {
			old, t, first = k, p.start, false
		}
	}
	r.remove(old)
}

func keyLess(a, b reasmKey) bool {
	if a.sender != b.sender {
		return a.sender < b.sender
	}
	return a.id < b.id
}

// expire drops partial messages older than d.
func (r *reassembler) expire(now time.Time, d time.Duration) {
	for k, p := range r.m {
		if !now.Before(p.start.Add(d)) {
			r.remove(k)
		}
	}
}

// deadline is when the oldest partial message expires, zero if none.
func (r *reassembler) deadline(d time.Duration) time.Time {
	var t time.Time
	for _, p := range r.m {
		if e := p.start.Add(d); t.IsZero() || e.Before(t) {
			t = e
		}
	}
	return t
}

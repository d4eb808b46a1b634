package tunnel

// The packets a peer holds while it has no established session, as
// wireguard-go's staged queue does: at most pendingLen per peer, and all
// peers together at most the pending share of the buffer budget
// (bufcap.go), so that peers whose endpoints are dead, whose packets may
// wait for a handshake that never comes, cannot hold the buffers the live
// tunnels need. The oldest go first.

// hold keeps b, which a session will send (flushPending).
func (p *peer) hold(b *packetBuf) {
	s := &p.dev.buf
	full := s.held.Load() >= s.pending.Load()
	switch {
	case len(p.pending) == pendingLen || full && len(p.pending) > 0:
		p.stats.dropQueueFull.Add(1)
		p.pending[0].release()
		p.pending = append(p.pending[:0], p.pending[1:]...)
	case full:
		p.stats.dropQueueFull.Add(1)
		b.release()
		return
	default:
		s.held.Add(1)
	}
	p.pending = append(p.pending, b)
}

// takePending returns the packets held, which the caller now owns.
func (p *peer) takePending() []*packetBuf {
	q := p.pending
	p.pending = nil
	p.dev.buf.held.Add(-int64(len(q)))
	return q
}

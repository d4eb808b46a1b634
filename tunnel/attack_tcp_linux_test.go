package tunnel

import (
	"crypto/rand"
	"errors"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// The TCP attacks of TestAttackHelper, run from namespace X against B's
// listener. Every connection is bounded in time, and at most
// tcpAttackConns are open at once, so the attacker's own descriptors stay
// bounded whatever B does.

const (
	tcpAttackConns = 512
	tcpDialTimeout = 2 * time.Second
)

// tcpConnFlood opens spec.Rate connections a second; each writes
// payload(i), reads whatever B answers for at most linger, and closes.
func tcpConnFlood(target string, deadline time.Time, rate int, linger time.Duration, payload func(i int) []byte, res attackResult, prefix string) {
	var connected, failed, skipped, back atomic.Int64
	sem := make(chan struct{}, tcpAttackConns)
	var wg sync.WaitGroup
	n := attackPaced(deadline, rate, func(i int) bool {
		select {
		case sem <- struct{}{}:
		default:
			skipped.Add(1)
			return true
		}
		p := payload(i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.DialTimeout("tcp4", target, tcpDialTimeout)
			if err != nil {
				failed.Add(1)
				return
			}
			defer c.Close()
			connected.Add(1)
			c.SetDeadline(time.Now().Add(linger))
			if _, err := c.Write(p); err != nil {
				return
			}
			k, _ := io.Copy(io.Discard, c)
			back.Add(k)
		}()
		return true
	})
	wg.Wait()
	res[prefix+"conns"] = int64(n)
	res[prefix+"connected"] = connected.Load()
	res[prefix+"failed"] = failed.Load()
	res[prefix+"skipped"] = skipped.Load()
	res[prefix+"bytes_back"] = back.Load()
}

// tcpHelloReplay sends A's genuine ClientHello (the stream bytes a real
// initiator writes first) on spec.Rate new connections a second.
func tcpHelloReplay(spec attackSpec) (attackResult, error) {
	deadline := time.Now().Add(spec.Duration)
	hello, err := readAttackFile(spec.Hello)
	if err != nil {
		return nil, err
	}
	res := attackResult{"hello_bytes": int64(len(hello[0]))}
	tcpConnFlood(spec.Target, deadline, spec.Rate, time.Second, func(int) []byte { return hello[0] }, res, "")
	return res, nil
}

// tcpJunk spends the first third of spec.Duration on spec.Rate garbage
// connections a second, and the rest on slowloris: spec.Slowloris
// connections, each sending A's genuine ClientHello one byte every
// slowlorisEvery and reconnecting when B closes it.
func tcpJunk(spec attackSpec) (attackResult, error) {
	start := time.Now()
	deadline := start.Add(spec.Duration)
	hello, err := readAttackFile(spec.Hello)
	if err != nil {
		return nil, err
	}
	stranger, err := readAttackFile(spec.Stranger)
	if err != nil {
		return nil, err
	}
	random := func(n int) []byte {
		b := make([]byte, n)
		rand.Read(b)
		return b
	}
	res := attackResult{}
	tcpConnFlood(spec.Target, start.Add(spec.Duration/3), spec.Rate, 500*time.Millisecond, func(i int) []byte {
		switch i % 4 {
		case 0: // anything
			return random(1 + mrand.IntN(2048))
		case 1: // a plaintext handshake record whose content is no envelope
			n := 1 + mrand.IntN(2000)
			return append([]byte{22, 3, 3, byte(n >> 8), byte(n)}, random(n)...)
		case 2: // a record header announcing more than a record may hold
			return []byte{22, 3, 3, 0xff, 0xff}
		default: // a genuine ClientHello of a key B does not pin
			return stranger[0]
		}
	}, res, "garbage_")
	slowloris(spec.Target, deadline, spec.Slowloris, hello[0], res)
	return res, nil
}

// slowlorisEvery is how often a slow connection sends its next byte.
const slowlorisEvery = 2 * time.Second

func slowloris(target string, deadline time.Time, n int, hello []byte, res attackResult) {
	var opened, closedByPeer, failed, open, maxOpen atomic.Int64
	var wg sync.WaitGroup
	// Ramp up over a second rather than in one burst of SYNs.
	for k := 0; k < n && time.Now().Before(deadline); k++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 4096)
			for time.Now().Before(deadline) {
				c, err := net.DialTimeout("tcp4", target, tcpDialTimeout)
				if err != nil {
					failed.Add(1)
					time.Sleep(time.Second)
					continue
				}
				opened.Add(1)
				o := open.Add(1)
				for m := maxOpen.Load(); o > m && !maxOpen.CompareAndSwap(m, o); m = maxOpen.Load() {
				}
				// Never the last byte: the hello must stay incomplete.
				for pos := 0; pos < len(hello)-1 && time.Now().Before(deadline); pos++ {
					c.SetWriteDeadline(time.Now().Add(time.Second))
					if _, err := c.Write(hello[pos : pos+1]); err != nil {
						closedByPeer.Add(1)
						break
					}
					c.SetReadDeadline(time.Now().Add(min(slowlorisEvery, time.Until(deadline))))
					if _, err := c.Read(buf); !errors.Is(err, os.ErrDeadlineExceeded) {
						closedByPeer.Add(1) // B closed (or, never, answered)
						break
					}
				}
				c.Close()
				open.Add(-1)
				// Reconnect at a slow pace too: a listener that closes at
				// once must not turn this into a connection flood.
				time.Sleep(time.Second)
			}
		}()
		time.Sleep(time.Second / time.Duration(max(n, 1)))
	}
	wg.Wait()
	res["slow_conns"] = int64(n)
	res["slow_opened"] = opened.Load()
	res["slow_closed_by_peer"] = closedByPeer.Load()
	res["slow_failed"] = failed.Load()
	res["slow_max_open"] = maxOpen.Load()
}

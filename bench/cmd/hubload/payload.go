//go:build linux

package main

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// The probe datagram the tool's peers send to the sink, as the UDP
// payload of an IPv4 packet they seal into their sessions (through the
// hub) or as a plain UDP datagram (the path without the tunnel):
//
//	magic "HUBL" | peer u32 | seq u64 | sent u64 (CLOCK_MONOTONIC ns) | flags u8 | padding
//
// CLOCK_MONOTONIC is one clock for every network namespace of the
// machine, so the sink's receive time minus sent is the one-way time.
const (
	probeMagic  = "HUBL"
	probeHeader = 4 + 4 + 8 + 8 + 1
	// flagEcho asks the sink to send the datagram back (a ping).
	flagEcho = 1
)

type probe struct {
	peer  uint32
	seq   uint64
	sent  int64
	flags byte
}

var errNotProbe = errors.New("not a probe datagram")

// putProbe writes p at the start of b, which must hold probeHeader bytes.
func putProbe(b []byte, p probe) {
	copy(b, probeMagic)
	binary.BigEndian.PutUint32(b[4:], p.peer)
	binary.BigEndian.PutUint64(b[8:], p.seq)
	binary.BigEndian.PutUint64(b[16:], uint64(p.sent))
	b[24] = p.flags
}

// parseProbe reads a probe datagram.
func parseProbe(b []byte) (probe, error) {
	if len(b) < probeHeader || string(b[:4]) != probeMagic {
		return probe{}, errNotProbe
	}
	return probe{
		peer:  binary.BigEndian.Uint32(b[4:]),
		seq:   binary.BigEndian.Uint64(b[8:]),
		sent:  int64(binary.BigEndian.Uint64(b[16:])),
		flags: b[24],
	}, nil
}

const (
	ipv4Header = 20
	udpHeader  = 8
	sinkPort   = 9000
)

// buildUDP4 writes an IPv4 packet carrying a UDP datagram with payload
// length n (already in place at b[28:28+n]) and returns it. The UDP
// checksum is left zero (allowed for IPv4); the header checksum is set,
// as the receiving kernel checks it.
func buildUDP4(b []byte, src, dst netip.Addr, sport, dport uint16, n int) []byte {
	total := ipv4Header + udpHeader + n
	h := b[:ipv4Header]
	h[0] = 0x45
	h[1] = 0
	binary.BigEndian.PutUint16(h[2:], uint16(total))
	binary.BigEndian.PutUint32(h[4:], 0) // id, flags, fragment offset
	h[6] = 0x40                          // don't fragment
	h[8] = 64                            // TTL
	h[9] = 17                            // UDP
	binary.BigEndian.PutUint16(h[10:], 0)
	s4, d4 := src.As4(), dst.As4()
	copy(h[12:16], s4[:])
	copy(h[16:20], d4[:])
	binary.BigEndian.PutUint16(h[10:], ipChecksum(h))
	u := b[ipv4Header : ipv4Header+udpHeader]
	binary.BigEndian.PutUint16(u[0:], sport)
	binary.BigEndian.PutUint16(u[2:], dport)
	binary.BigEndian.PutUint16(u[4:], uint16(udpHeader+n))
	binary.BigEndian.PutUint16(u[6:], 0)
	return b[:total]
}

func ipChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(h); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	return ^uint16(sum)
}

// udpPayload is the payload of an IPv4 UDP packet (what a pong through the
// tunnel carries), or nil for anything else.
func udpPayload(pkt []byte) []byte {
	if len(pkt) < ipv4Header+udpHeader || pkt[0]>>4 != 4 || pkt[9] != 17 {
		return nil
	}
	ihl := int(pkt[0]&0xf) * 4
	total := int(binary.BigEndian.Uint16(pkt[2:]))
	if ihl < ipv4Header || total > len(pkt) || total < ihl+udpHeader {
		return nil
	}
	return pkt[ihl+udpHeader : total]
}

package session

import (
	"fmt"
	"testing"

	"github.com/current-vpn/current/session/mls"
)

// The handshake's sizes as docs/protocol.md states them (7.4, 7.5.1): the
// number of datagrams of each hello at the default MaxDatagramSize, and of
// plaintext stream records of the ServerHello. The text cites this test,
// so the two cannot drift apart.
var wireSizes = []struct {
	suite                       mls.CipherSuiteID
	helloDatagrams, welcomeDgrs int
	welcomeRecords              int
}{
	{mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519, 1, 1, 1},
	{mls.MLS128MLKEM768X25519AES128GCMSHA256Ed25519, 3, 4, 1},
	{mls.MLS192MLKEM768AES256GCMSHA384MLDSA65, 11, 18, 2},
}

func TestHandshakeWireSizes(t *testing.T) {
	for _, w := range wireSizes {
		t.Run(fmt.Sprintf("%#04x", uint16(w.suite)), func(t *testing.T) {
			ik, rk := newKeys(t, w.suite), newKeys(t, w.suite)
			i, r := newDatagramPair(t, w.suite, ik, rk)
			hello := deliver(t, i, r, t0)
			welcome := deliver(t, r, i, t0)
			if !i.Established() {
				t.Fatal("datagram handshake did not complete")
			}
			l := newLinkWith(t, w.suite, 1, ik, rk)
			var helloBytes int
			for _, b := range l.a.s.Outgoing() {
				if err := l.b.s.HandleStream(l.now, b); err != nil {
					t.Fatal(err)
				}
				helloBytes += len(b)
			}
			var records, welcomeBytes int
			for _, b := range l.b.s.Outgoing() {
				if b[0] == contentHandshake {
					records++
					welcomeBytes += len(b) - plainHeaderLen
				}
			}
			t.Logf("ClientHello %d datagrams (%d stream bytes); ServerHello %d datagrams, %d plaintext records (%d bytes)", hello, helloBytes, welcome, records, welcomeBytes)
			if hello != w.helloDatagrams || welcome != w.welcomeDgrs || records != w.welcomeRecords {
				t.Errorf("ClientHello %d datagrams, ServerHello %d datagrams and %d stream records; docs/protocol.md says %d, %d, %d",
					hello, welcome, records, w.helloDatagrams, w.welcomeDgrs, w.welcomeRecords)
			}
		})
	}
}

package tunnel

import (
	"fmt"
	"path/filepath"
	"testing"
)

// TestFallbackHandshakeIndexRoutable: an initiator whose resumption a
// listener with stale state rejects starts a fresh handshake under a new
// index; the listener's answer to it must find that index in the index
// table, however fast it comes back. Between daemons
// (TestE2ESimultaneousRestart, stale listener state) the answer often came
// before the owner had entered the new index, which it did after sending,
// and was refused as unknown_index; in-process the answer is slower than
// that, so this checks the outcome of the same sequence, four times: one
// refused resumption, one fresh handshake, no refusal.
func TestFallbackHandshakeIndexRoutable(t *testing.T) {
	const rounds = 4
	dirA, dirB := t.TempDir(), t.TempDir()
	a, b := udpPair(t, dirA, dirB)
	p := ipPacket("10.0.0.2", "10.0.0.1", "before")
	for round := range rounds {
		b.tun.in <- p
		a.tun.expect(t, p)
		a.dev.saver.flush()
		file := stateFile(t, dirA)
		stale := filepath.Join(t.TempDir(), "a-stale.state")
		copyFile(t, file, stale)
		// Three epochs on, as in TestE2ESimultaneousRestart.
		for range 3 {
			before := a.dev.Stats().Peers["b"].Epochs
			a.dev.Rekey()
			waitFor(t, "epoch update", func() bool { return a.dev.Stats().Peers["b"].Epochs > before })
		}
		a.dev.Close()
		b.dev.Close()
		copyFile(t, stale, file)

		a = startNode(t, Config{ListenPort: 0, StateDir: dirA, Peers: []PeerConfig{{Name: "b", PublicKey: b.keys.pub, AllowedIPs: pfxs("10.0.0.2/32"), Transport: TransportUDP}}}, a.keys)
		b = startNode(t, Config{ListenPort: 0, StateDir: dirB, Peers: []PeerConfig{{Name: "a", PublicKey: a.keys.pub, Endpoint: fmt.Sprintf("127.0.0.1:%d", a.dev.UDPPort()), AllowedIPs: pfxs("10.0.0.1/32"), Transport: TransportUDP}}}, b.keys)
		q := ipPacket("10.0.0.2", "10.0.0.1", fmt.Sprintf("after restart %d", round))
		b.tun.in <- q
		a.tun.expect(t, q)
		if st := peerStatus(t, b.dev, "a"); st.Handshake.Established != 1 || st.Handshake.ResumeFailed != 1 {
			t.Fatalf("round %d: B's outcomes %+v, want a refused resumption and a fresh handshake", round, st.Handshake)
		}
		if n := b.dev.GuardStats().Refused["unknown_index"]; n != 0 {
			t.Fatalf("round %d: B refused %d datagrams for an unknown index (the answer to its fresh hello)", round, n)
		}
	}
}

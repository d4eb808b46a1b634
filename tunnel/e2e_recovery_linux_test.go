package tunnel

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Recovery of a roaming laptop (issue 16, part 2), with real daemons in
// namespaces: A is the laptop (it has the hub's endpoint), B the hub (a
// listener). Traffic must flow again within recoveryBudget:
//   - of the hub being READY again after it restarted with an empty
//     state_dir, the laptop pinging all along;
//   - of the laptop being continued after it was frozen (SIGSTOP) for
//     longer than the hub kept its session.
const recoveryBudget = 2 * time.Second

// withInterfaceKeys adds lines to the [interface] table of the config file
// at path.
func withInterfaceKeys(t *testing.T, path string, lines ...string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.Replace(string(b), "[interface]\n", "[interface]\n"+strings.Join(lines, "\n")+"\n", 1)
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

// recoveryPair starts the laptop and the hub in their own directory and
// waits until a ping goes through.
type recoveryPair struct {
	dir, bin, nsA, nsB string
	cfgA, cfgB         string
	a, b               *daemon
	starts             int
}

func newRecoveryPair(t *testing.T, dir, bin, nsA, nsB string, hubKeys ...string) *recoveryPair {
	t.Helper()
	ka, kb := writeKey(t, dir, "a"), writeKey(t, dir, "b")
	p := &recoveryPair{dir: dir, bin: bin, nsA: nsA, nsB: nsB,
		cfgA: writeConfigT(t, dir, "a", "10.99.0.1/24", "fd99::1/64", kb, "192.0.2.2:51900", "10.99.0.2/32", "fd99::2/128", "udp"),
		cfgB: writeConfigT(t, dir, "b", "10.99.0.2/24", "fd99::2/64", ka, "", "10.99.0.1/32", "fd99::1/128", "udp")}
	if len(hubKeys) > 0 {
		withInterfaceKeys(t, p.cfgB, hubKeys...)
	}
	p.b = p.start(t, nsB, p.cfgB)
	p.a = p.start(t, nsA, p.cfgA)
	e2ePing(t, nsA, "10.99.0.2")
	return p
}

// start starts a daemon (each start in a directory of its own, for its
// notification socket) and returns it once it is READY.
func (p *recoveryPair) start(t *testing.T, ns, cfg string) *daemon {
	t.Helper()
	sub := filepath.Join(p.dir, "run"+string(rune('a'+p.starts)))
	p.starts++
	if err := os.MkdirAll(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, sub, ns, p.bin, cfg)
	d.waitNotify(t, "READY=1")
	return d
}

func TestE2ERecovery(t *testing.T) {
	dir, bin, nsA, nsB, _, _ := e2eSetup(t)

	t.Run("hub-forgot", func(t *testing.T) {
		sub := filepath.Join(dir, "forgot")
		if err := os.MkdirAll(sub, 0o700); err != nil {
			t.Fatal(err)
		}
		p := newRecoveryPair(t, sub, bin, nsA, nsB)
		// The hub stops (saving its state, so it tells the laptop
		// nothing) and comes back without it: a new machine, a wiped
		// state_dir.
		if err := p.b.cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := p.b.wait(10 * time.Second); err != nil {
			t.Fatal(err)
		}
		state := filepath.Join(sub, "b.state")
		if err := os.RemoveAll(state); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(state, 0o700); err != nil {
			t.Fatal(err)
		}
		pinger := startRestartPinger(t, nsA, "10.99.0.2")
		p.b = p.start(t, nsB, p.cfgB)
		ready := time.Now()
		reply, err := pinger.firstReply(15 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		d := reply.Sub(ready)
		t.Logf("hub restarted with an empty state_dir: first answer %v after it was READY", d.Round(time.Millisecond))
		if d >= recoveryBudget {
			t.Errorf("first answer %v after the hub was READY, want < %v", d, recoveryBudget)
		}
		if !strings.Contains(p.a.log.String(), "no answer to our traffic") {
			t.Errorf("the laptop did not notice the hub forgot its session")
		}
	})

	t.Run("laptop-frozen", func(t *testing.T) {
		sub := filepath.Join(dir, "frozen")
		if err := os.MkdirAll(sub, 0o700); err != nil {
			t.Fatal(err)
		}
		// A hub that gives sessions up quickly: it rekeys every 10 s and
		// drops a session whose update goes unanswered for 5 s.
		p := newRecoveryPair(t, sub, bin, nsA, nsB, `rekey_interval = "10s"`, `dead_peer_timeout = "5s"`)
		if err := p.a.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		frozen := time.Now()
		deadline := frozen.Add(30 * time.Second)
		for !strings.Contains(p.b.log.String(), "session failed") {
			if time.Now().After(deadline) {
				p.a.cmd.Process.Signal(syscall.SIGCONT)
				t.Fatal("the hub kept the frozen laptop's session for 30 s")
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("the hub gave the session up %v after the laptop froze", time.Since(frozen).Round(time.Millisecond))
		time.Sleep(time.Second) // frozen for longer than the hub kept it
		pinger := startRestartPinger(t, nsA, "10.99.0.2")
		if err := p.a.cmd.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		continued := time.Now()
		reply, err := pinger.firstReply(15 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		d := reply.Sub(continued)
		t.Logf("laptop continued after %v frozen: first answer %v later", continued.Sub(frozen).Round(time.Millisecond), d.Round(time.Millisecond))
		if d >= recoveryBudget {
			t.Errorf("first answer %v after the laptop continued, want < %v", d, recoveryBudget)
		}
	})
}

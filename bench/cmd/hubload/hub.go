//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/current-vpn/current/bench/internal/procstat"
	"github.com/current-vpn/current/config"
	"github.com/current-vpn/current/ctl"
)

// The hub: a real currentd in its own namespace, configured with one
// peer per private key of the tool, responder only (no endpoints), with
// a state directory so that a restart resumes.

const (
	hubIfName     = "hub0"
	hubListenPort = 51900
	hubTunAddr    = "10.128.0.1"
)

type hub struct {
	bin, ns, dir string
	// profile, if set, is where currentd writes a CPU profile: the first
	// run's; each restart's goes beside it, numbered (cpu-1.pprof, ...).
	// A run ended by kill -9 writes none.
	profile string
	starts  int
	cmd     *exec.Cmd
	exited  chan struct{}
	log     *os.File
	// rssConfigured is the RSS (kB) with every peer configured and none
	// contacted.
	rssConfigured int64
}

// writeHubConfig writes the hub's key and configuration for peers pubs
// into dir and returns the configuration's path. rekey is the hub's own
// rekey_interval (config.MinRekeyInterval at least).
func writeHubConfig(dir string, suite string, hubKey config.PrivateKey, pubs []config.PublicKey, rekey time.Duration) (string, error) {
	if err := os.MkdirAll(filepath.Join(dir, "state"), 0o700); err != nil {
		return "", err
	}
	keyPath := filepath.Join(dir, "hub.key")
	if err := config.WritePrivateKeyFile(keyPath, hubKey); err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[interface]\nname = %q\nprivate_key_file = %q\nlisten_port = %d\naddresses = [\"%s/9\"]\nmtu = %d\nsuite = %q\nstate_dir = %q\nrekey_interval = \"%ds\"\n",
		hubIfName, keyPath, hubListenPort, hubTunAddr, probeIPLen, suite, filepath.Join(dir, "state"), int(rekey.Seconds()))
	for i, pub := range pubs {
		fmt.Fprintf(&b, "\n[[peer]]\nname = \"p%d\"\npublic_key = %q\nallowed_ips = [\"%s/32\"]\ntransport = \"udp\"\n", i, pub.String(), peerTunnelAddr(i))
	}
	path := filepath.Join(dir, "hub.toml")
	return path, os.WriteFile(path, []byte(b.String()), 0o600)
}

func (h *hub) ctlPath() string { return filepath.Join(h.dir, "ctl", hubIfName+".sock") }

// start runs currentd in the hub's namespace and waits until its control
// socket answers (the daemon is READY then: it serves control after its
// device is up).
func (h *hub) start() (time.Time, error) {
	log, err := os.OpenFile(filepath.Join(h.dir, "currentd.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return time.Time{}, err
	}
	h.log = log
	args := []string{"netns", "exec", h.ns, h.bin, "-c", filepath.Join(h.dir, "hub.toml"), "--ctl-dir", filepath.Join(h.dir, "ctl")}
	if h.profile != "" {
		path := h.profile
		if h.starts > 0 {
			path = strings.TrimSuffix(path, ".pprof") + fmt.Sprintf("-%d.pprof", h.starts)
		}
		args = append(args, "--cpuprofile", path)
	}
	h.starts++
	h.cmd = exec.Command("ip", args...)
	h.cmd.Stdout, h.cmd.Stderr = log, log
	t0 := time.Now()
	if err := h.cmd.Start(); err != nil {
		return t0, err
	}
	h.exited = make(chan struct{})
	go func() { _ = h.cmd.Wait(); close(h.exited) }()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case <-h.exited:
			return t0, fmt.Errorf("currentd exited at start: %s", tail(filepath.Join(h.dir, "currentd.log")))
		default:
		}
		if _, err := h.status(); err == nil {
			return t0, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return t0, fmt.Errorf("currentd does not answer on %s", h.ctlPath())
}

// pid is currentd's own process ID ("ip netns exec" execs it).
func (h *hub) pid() int { return h.cmd.Process.Pid }

// stopTimeout is how long stop waits for currentd to exit before it
// kills it (systemd's default is 90 s).
const stopTimeout = 3 * time.Minute

// stop signals the hub and waits for it to exit.
func (h *hub) stop(sig syscall.Signal) time.Duration {
	t0 := time.Now()
	_ = h.cmd.Process.Signal(sig)
	select {
	case <-h.exited:
	case <-time.After(stopTimeout):
		_ = h.cmd.Process.Kill()
		<-h.exited
	}
	h.log.Close()
	return time.Since(t0)
}

func (h *hub) status() (*ctl.Status, error) {
	c, err := ctl.Dial(h.ctlPath())
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return c.Status(ctx, "")
}

// hubCounts sums what the hub reports of its peers.
type hubCounts struct {
	handshakes, resumed, resumeFailed, epochChanges, cookies uint64
	replayDrops, epochDrops, macDrops                        uint64
	// rxPackets: packets the hub's sessions opened and handed to its
	// TUN; queueFull, badSource: dropped at a full queue (inbound or
	// outbound), with a source outside the peer's allowed IPs.
	rxPackets, queueFull, badSource uint64
	// noBuffer: packets the hub's readers dropped with every packet
	// buffer in use (device-wide, not per peer).
	noBuffer    uint64
	refused     map[string]uint64
	established int
}

func (h *hub) counts() (hubCounts, error) {
	st, err := h.status()
	if err != nil {
		return hubCounts{}, err
	}
	c := hubCounts{cookies: st.Unauthenticated.CookiesSent, refused: st.Unauthenticated.Refused, noBuffer: st.Dropped.NoBuffer}
	for _, p := range st.Peers {
		c.handshakes += p.Handshakes.Established
		c.resumed += p.Resumptions.Resumed
		c.resumeFailed += p.Resumptions.Failed
		c.epochChanges += p.EpochChanges
		c.replayDrops += p.Dropped.Replay
		c.epochDrops += p.Dropped.UnknownEpoch
		c.macDrops += p.Dropped.BadMAC
		c.rxPackets += p.RxPackets
		c.queueFull += p.Dropped.QueueFull
		c.badSource += p.Dropped.BadSource
		if p.State == ctl.StateEstablished {
			c.established++
		}
	}
	return c, nil
}

// usage is the hub's CPU time and RSS now.
func (h *hub) usage() (time.Duration, int64) {
	cpu, _ := procstat.CPU(h.pid())
	kb, _ := procstat.VmRSSKB(h.pid())
	return cpu, kb
}

// tail is the last lines of a log, for an error message.
func tail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 5 {
			lines = lines[1:]
		}
	}
	return strings.Join(lines, " | ")
}

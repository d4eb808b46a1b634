package main

import (
	"log/slog"
	"math"
	"net/netip"
	"os"
	"os/signal"
	"reflect"
	"slices"
	"syscall"
	"time"

	"github.com/current-vpn/current/config"
	"github.com/current-vpn/current/hostdns"
	"github.com/current-vpn/current/routing"
	"github.com/current-vpn/current/session"
	"github.com/current-vpn/current/tun"
	"github.com/current-vpn/current/tunnel"
)

// defaultMTU is used when the configuration leaves the MTU to be derived
// but no endpoint is an address: 1420 is what a 1500-byte path leaves after
// IPv6, UDP and our 32 bytes of datagram overhead.
const defaultMTU = 1420

// probeTiming bounds the wait between UDP probes of a transport=auto
// peer that fell back to TCP.
type probeTiming struct{ min, max time.Duration }

// daemon runs the tunnel of the configuration file path, with its control
// socket in ctlDir, until a signal ends it.
func daemon(path, ctlDir string, probes probeTiming, log *slog.Logger) error {
	// Signals are caught before anything is installed, so that a SIGTERM
	// during start-up still goes through the clean shutdown.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGUSR1)
	defer signal.Stop(sigs)

	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	defer cfg.Interface.PrivateKey.Zero()
	tcfg := tunnelConfig(cfg, log)
	tcfg.UDPProbeMin, tcfg.UDPProbeMax = probes.min, probes.max
	ifc := &cfg.Interface
	hooks := hookRunner{ifname: ifc.Name, timeout: ifc.HookTimeoutOrDefault(), log: log}

	// What a killed predecessor left on the host goes first, so that a
	// restart after SIGKILL starts from a clean resolver.
	if rec, err := hostdns.Recover(ifc.StateDir, ifc.Name); err != nil {
		log.Warn("removing DNS settings left by a previous run", "err", err)
	} else if rec != nil {
		log.Info("removed DNS settings left by a previous run", "backend", rec.Backend, "entry", rec.Entry)
	}
	if err := hooks.up("pre_up", ifc.Hooks.PreUp); err != nil {
		return err
	}
	// From here on, every exit runs post_down, last: it undoes what
	// pre_up did.
	defer hooks.down("post_down", ifc.Hooks.PostDown)

	ctlc, err := listenControl(ctlDir, cfg, path, log)
	if err != nil {
		return err
	}
	defer ctlc.Close()
	me, err := listenMetrics(&cfg.Interface)
	if err != nil {
		return err
	}
	defer me.Close()
	dev, link, err := start(ifc.Name, tcfg, log)
	if err != nil {
		return err
	}
	// The Link goes last: tunnel's Close removes what it installed, and
	// Link.Close removes anything left over (say, after a failed delete)
	// and releases its netlink socket.
	defer func() {
		if err := link.Close(); err != nil {
			log.Warn("removing the link configuration", "err", err)
		}
	}()
	var dns *hostdns.Active
	// stop takes the tunnel down; every path out after start goes
	// through it.
	stop := func() error {
		hooks.down("pre_down", ifc.Hooks.PreDown)
		if dns != nil {
			if err := dns.Revert(); err != nil {
				log.Error("removing the DNS settings", "err", err)
			}
		}
		ctlc.Close()
		me.Close()
		return dev.Close()
	}
	if dns, err = applyDNS(cfg, link.Index(), log); err != nil {
		stop()
		return err
	}
	if err := hooks.up("post_up", ifc.Hooks.PostUp); err != nil {
		stop()
		return err
	}
	// A change of our own addresses (roaming) is passed on to the
	// sessions at once.
	stopWatch := make(chan struct{})
	watchDone, err := routing.WatchAddresses(stopWatch, dev.UnderlayChanged)
	if err != nil {
		log.Warn("address changes will go unnoticed until a send fails", "err", err)
	}
	defer func() {
		close(stopWatch)
		if watchDone != nil {
			<-watchDone
		}
	}()
	defer followEndpoints(dev, link, log)()
	ctlc.serve(dev)
	if err := me.serve(ctlc.b, log); err != nil {
		stop()
		return err
	}
	log.Info("running", "interface", ifc.Name, "peers", len(cfg.Peers), "suite", config.SuiteName(ifc.Suite))
	if err := sdNotify("READY=1"); err != nil {
		log.Warn("sd_notify READY", "err", err)
	}

	for sig := range sigs {
		switch sig {
		case syscall.SIGUSR1:
			log.Info("epoch update requested")
			dev.Rekey()
		case syscall.SIGHUP:
			ctlc.reload(path, cfg, dev, log)
		default:
			log.Info("shutting down", "signal", sig.String())
			if err := sdNotify("STOPPING=1"); err != nil {
				log.Warn("sd_notify STOPPING", "err", err)
			}
			err := stop()
			if err == nil {
				log.Info("stopped")
			}
			return err
		}
	}
	return nil
}

// start creates the TUN device, opens its link and starts the tunnel; on
// error nothing is left behind (closing the TUN destroys the interface).
func start(name string, tcfg tunnel.Config, log *slog.Logger) (*tunnel.Device, *routing.Link, error) {
	td, err := tun.Create(name, tcfg.MTU)
	if err != nil {
		return nil, nil, err
	}
	if td.Name() != name {
		// A macOS utun takes the kernel's number (tun.Create).
		log.Info("TUN device created under another name", "interface", name, "device", td.Name())
	}
	link, err := routing.Open(td.Name())
	if err != nil {
		td.Close()
		return nil, nil, err
	}
	link.SetFullTunnelMark(tcfg.Fwmark)
	primeEndpoints(link, tcfg.Peers, log)
	dev, err := tunnel.New(tcfg, td, link)
	if err != nil {
		link.Close()
		td.Close()
		return nil, nil, err
	}
	return dev, link, nil
}

// reload re-reads the configuration and applies its peer list; sessions of
// peers whose key and name are unchanged survive. A file that does not load
// changes nothing: the daemon keeps running on what it has.
func reload(path string, running *config.Config, dev *tunnel.Device, log *slog.Logger) *config.Config {
	_ = sdNotify("RELOADING=1")
	defer func() { _ = sdNotify("READY=1") }()
	cfg, err := config.Load(path)
	if err != nil {
		log.Error("reload failed; configuration unchanged", "err", err)
		return nil
	}
	defer cfg.Interface.PrivateKey.Zero()
	if interfaceChanged(&running.Interface, &cfg.Interface) {
		log.Warn("interface settings changed; they take effect at the next restart (only peers are reloaded)")
	}
	if err := dev.Reconfigure(tunnelConfig(cfg, log).Peers); err != nil {
		log.Error("reload failed", "err", err)
		return nil
	}
	// The file's rekey policy replaces one set over the control socket,
	// as its peers do.
	dev.SetRekeyPolicy(tunnelRekeyPolicy(&cfg.Interface))
	log.Info("reloaded", "peers", len(cfg.Peers), "rekey_interval", cfg.Interface.RekeyInterval, "rekey_bytes", cfg.Interface.RekeyBytes)
	return cfg
}

func interfaceChanged(a, b *config.Interface) bool {
	pa, erra := a.PrivateKey.Public()
	pb, errb := b.PrivateKey.Public()
	return a.Name != b.Name || a.ListenPort != b.ListenPort || a.MTU != b.MTU || a.Suite != b.Suite ||
		!slices.Equal(a.Addresses, b.Addresses) || a.ManualRoutes != b.ManualRoutes || a.Fwmark != b.Fwmark ||
		a.MetricsListen != b.MetricsListen || a.MetricsListenPublic != b.MetricsListenPublic || a.MetricsAggregateOnly != b.MetricsAggregateOnly ||
		!slices.Equal(a.DNS, b.DNS) || !slices.Equal(a.DNSSearch, b.DNSSearch) || !reflect.DeepEqual(a.Hooks, b.Hooks) || a.HookTimeout != b.HookTimeout ||
		erra != nil || errb != nil || !pa.Equal(pb)
}

// tunnelRekeyPolicy is the tunnel's form of ifc's rekey policy.
func tunnelRekeyPolicy(ifc *config.Interface) (time.Duration, int64) {
	return ifc.RekeyInterval, int64(min(ifc.RekeyBytes, math.MaxInt64))
}

// fullTunnelMark is the mark of our sockets and the full tunnel's table.
func fullTunnelMark(ifc *config.Interface) uint32 {
	if ifc.Fwmark == 0 {
		return routing.FullTunnelMark
	}
	return ifc.Fwmark
}

// tunnelConfig maps the file's configuration onto the tunnel's.
func tunnelConfig(cfg *config.Config, log *slog.Logger) tunnel.Config {
	ifc := cfg.Interface
	t := tunnel.Config{
		Suite:      ifc.Suite,
		PrivateKey: ifc.PrivateKey.Bytes(),
		ListenPort: int(ifc.ListenPort),
		Addresses:  ifc.Addresses,
		MTU:        ifc.MTU,
		Logger:     log,
		StateDir:   ifc.StateDir,
		// Always, not only with a default route in the file: one can
		// come later with a reload or currentctl peers add.
		Fwmark:       fullTunnelMark(&ifc),
		ManualRoutes: ifc.ManualRoutes,
	}
	// The file's zero values are already its defaults.
	t.RekeyInterval, t.RekeyBytes = tunnelRekeyPolicy(&ifc)
	t.GiveUp = ifc.DeadPeerTimeout
	for _, p := range cfg.Peers {
		tr := tunnel.TransportUDP
		switch p.Transport {
		case config.TransportTCP:
			tr = tunnel.TransportTCP
		case config.TransportAuto:
			tr = tunnel.TransportAuto
		}
		t.Peers = append(t.Peers, tunnel.PeerConfig{
			Name:                p.Name,
			PublicKey:           p.PublicKey.Bytes(),
			Endpoint:            p.Endpoint.String(),
			AllowedIPs:          p.AllowedIPs,
			Transport:           tr,
			PersistentKeepalive: p.PersistentKeepalive,
		})
	}
	if t.MTU == 0 {
		t.MTU = deriveMTU(cfg.Peers, routing.RouteMTU, log)
	}
	return t
}

// deriveMTU is the tunnel MTU for mtu = 0: the smallest route MTU towards
// any peer endpoint given as an address, minus the IP and UDP headers and
// our datagram overhead, never below config.MinMTU. Without such an
// endpoint (names are resolved later, peers without one dial us) it is
// defaultMTU, what a 1500-byte IPv6 path leaves.
func deriveMTU(peers []config.Peer, routeMTU func(netip.Addr) (int, error), log *slog.Logger) int {
	mtu := 0
	for _, p := range peers {
		ap, ok := p.Endpoint.AddrPort()
		if !ok {
			continue
		}
		a := ap.Addr().Unmap()
		rm, err := routeMTU(a)
		if err != nil {
			log.Warn("no route MTU to the peer's endpoint", "peer", p.Name, "err", err)
			continue
		}
		ipHdr := 20
		if a.Is6() {
			ipHdr = 40
		}
		m := max(rm-ipHdr-8-session.PacketOverhead(session.Datagram), config.MinMTU)
		if mtu == 0 || m < mtu {
			mtu = m
		}
	}
	if mtu == 0 {
		return defaultMTU
	}
	return mtu
}

// Package resolvedtest gives tests a real D-Bus bus (dbus-daemon) with a
// stand-in for systemd-resolved's org.freedesktop.resolve1.Manager on it.
// systemd-resolved itself cannot run in a test: installing it replaces the
// host's /etc/resolv.conf, and it wants systemd as PID 1. The stand-in
// records the link calls it is sent, with their arguments as they crossed
// the bus, so that tests see exactly what the daemon asked for.
package resolvedtest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/godbus/dbus/v5"
)

const busConfig = `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <listen>unix:path=%s</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
`

// StartBus runs a dbus-daemon of the test's own and returns its address;
// the daemon is killed when the test ends. It skips the test when
// dbus-daemon is not installed.
func StartBus(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("dbus-daemon")
	if err != nil {
		t.Skip("needs dbus-daemon (apt-get install dbus-daemon; .ci/run installs it)")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "bus.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(busConfig, filepath.Join(dir, "bus"))), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--config-file="+conf, "--nofork", "--print-address")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		addr <- strings.TrimSpace(line)
	}()
	select {
	case a := <-addr:
		if a == "" {
			t.Fatal("dbus-daemon printed no address")
		}
		return a
	case <-time.After(10 * time.Second):
		t.Fatal("dbus-daemon printed no address within 10s")
	}
	return ""
}

// Call is one method call the stand-in received.
type Call struct {
	Method  string
	Ifindex int32
	Args    any // the method's other argument, as decoded from the bus
}

// LinkDNS and LinkDomain are the elements of SetLinkDNS's a(iay) and
// SetLinkDomains's a(sb).
type LinkDNS struct {
	Family  int32
	Address []byte
}

type LinkDomain struct {
	Domain      string
	RoutingOnly bool
}

// Resolved is the stand-in service.
type Resolved struct {
	conn *dbus.Conn
	mu   sync.Mutex
	got  []Call
	// Fail, if set, makes the named method return an error.
	fail string
}

// Serve connects to the bus at addr, takes org.freedesktop.resolve1 and
// serves the Manager's link methods until the test ends. failMethod, if
// not empty, names a method that answers with an error.
func Serve(t testing.TB, addr, failMethod string) *Resolved {
	t.Helper()
	conn, err := dbus.Connect(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	r := &Resolved{conn: conn, fail: failMethod}
	if err := conn.Export(manager{r}, "/org/freedesktop/resolve1", "org.freedesktop.resolve1.Manager"); err != nil {
		t.Fatal(err)
	}
	reply, err := conn.RequestName("org.freedesktop.resolve1", dbus.NameFlagDoNotQueue)
	if err != nil || reply != dbus.RequestNameReplyPrimaryOwner {
		t.Fatalf("RequestName: %v, %v", reply, err)
	}
	return r
}

// Calls returns the calls received so far.
func (r *Resolved) Calls() []Call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Call(nil), r.got...)
}

func (r *Resolved) record(method string, ifindex int32, args any) *dbus.Error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, Call{method, ifindex, args})
	if method == r.fail {
		return dbus.NewError("org.freedesktop.resolve1.LinkBusy", []any{"stand-in refuses " + method})
	}
	return nil
}

// manager holds the exported methods only, so that Export publishes
// nothing else.
type manager struct{ r *Resolved }

func (m manager) SetLinkDNS(ifindex int32, addrs []LinkDNS) *dbus.Error {
	return m.r.record("SetLinkDNS", ifindex, addrs)
}

func (m manager) SetLinkDomains(ifindex int32, domains []LinkDomain) *dbus.Error {
	return m.r.record("SetLinkDomains", ifindex, domains)
}

func (m manager) SetLinkDefaultRoute(ifindex int32, enable bool) *dbus.Error {
	return m.r.record("SetLinkDefaultRoute", ifindex, enable)
}

func (m manager) RevertLink(ifindex int32) *dbus.Error {
	return m.r.record("RevertLink", ifindex, nil)
}

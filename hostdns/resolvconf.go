package hostdns

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"time"
)

// resolvconfTimeout bounds one resolvconf run: it takes a lock with a
// timeout of its own (10 s in openresolv) and runs subscribers.
const resolvconfTimeout = 30 * time.Second

// Resolvconf configures the resolver through resolvconf(8), as wg-quick
// does: the entry is added with -m 0 -x (first and exclusive, so that
// resolv.conf lists the tunnel's servers only) and removed with -d -f.
type Resolvconf struct {
	// Path is the resolvconf program.
	Path string
	// InterfaceOrder is Debian resolvconf's interface-order file; its
	// first "name*" pattern prefixes our entry (wg-quick's
	// resolvconf_iface_prefix), so that "tun.current0" sorts where
	// Debian puts tunnels.
	InterfaceOrder string
}

// NewResolvconf finds resolvconf in $PATH.
func NewResolvconf() (*Resolvconf, error) {
	path, err := exec.LookPath("resolvconf")
	if err != nil {
		return nil, err
	}
	return &Resolvconf{Path: path, InterfaceOrder: "/etc/resolvconf/interface-order"}, nil
}

func (r *Resolvconf) Name() string { return backendResolvconf }

func (r *Resolvconf) Record(ifname string) Record {
	return Record{Backend: backendResolvconf, Entry: r.entry(ifname)}
}

func (r *Resolvconf) Apply(ifname string, _ int, s Settings) (Applied, error) {
	entry := r.entry(ifname)
	if err := checkEntry(entry); err != nil {
		return nil, err
	}
	if err := runResolvconf(r.Path, resolvConfText(s), "-a", entry, "-m", "0", "-x"); err != nil {
		return nil, err
	}
	return &resolvconfEntry{path: r.Path, entry: entry}, nil
}

var orderPattern = regexp.MustCompile(`^([A-Za-z0-9-]+)\*$`)

// entry is wg-quick's "$(resolvconf_iface_prefix)$INTERFACE": a prefix is
// used only with Debian's resolvconf, whose program is not a symlink (on
// systemd hosts resolvconf is a link to resolvectl, which wants the bare
// interface name).
func (r *Resolvconf) entry(ifname string) string {
	f, err := os.Open(r.InterfaceOrder)
	if err != nil {
		return ifname
	}
	defer f.Close()
	if fi, err := os.Lstat(r.Path); err != nil || fi.Mode()&os.ModeSymlink != 0 {
		return ifname
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := orderPattern.FindStringSubmatch(sc.Text()); m != nil {
			return m[1] + "." + ifname
		}
	}
	return ifname
}

type resolvconfEntry struct{ path, entry string }

func (e *resolvconfEntry) Revert() error {
	return deleteResolvconf(e.path, e.entry)
}

// deleteResolvconf removes entry; -f makes a missing entry no error.
func deleteResolvconf(path, entry string) error {
	return runResolvconf(path, "", "-d", entry, "-f")
}

func runResolvconf(path, stdin string, args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), resolvconfTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdin = bytes.NewBufferString(stdin)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return fmt.Errorf("resolvconf %v: no answer within %s", args, resolvconfTimeout)
	}
	if err != nil {
		return fmt.Errorf("resolvconf %v: %v: %s", args, err, bounded(out))
	}
	return nil
}

package hostdns

import (
	"errors"
	"fmt"
	"os/exec"
)

// Active is the tunnel's DNS configuration in force on the host.
type Active struct {
	backend  Backend
	applied  Applied
	stateDir string
	ifname   string
}

// Apply records in stateDir what b will change, then applies s to the link
// ifname. If it fails, nothing is left behind, record included.
func Apply(b Backend, stateDir, ifname string, ifindex int, s Settings) (*Active, error) {
	if err := writeRecord(stateDir, ifname, b.Record(ifname)); err != nil {
		return nil, fmt.Errorf("recording the DNS configuration: %w", err)
	}
	applied, err := b.Apply(ifname, ifindex, s)
	if err != nil {
		removeRecord(stateDir, ifname)
		return nil, err
	}
	return &Active{backend: b, applied: applied, stateDir: stateDir, ifname: ifname}, nil
}

// Backend names the backend in use, for logs.
func (a *Active) Backend() string { return a.backend.Name() }

// Revert undoes the configuration. The record stays when that fails, so
// that the next start tries again.
func (a *Active) Revert() error {
	if err := a.applied.Revert(); err != nil {
		return err
	}
	return removeRecord(a.stateDir, a.ifname)
}

// Recover undoes what a previous process for ifname recorded in stateDir
// and did not revert (it was killed, or the host lost power). It reports
// the record it acted on, if any.
func Recover(stateDir, ifname string) (*Record, error) {
	r, ok, err := readRecord(stateDir, ifname)
	if err != nil {
		// A record we cannot read names nothing we could undo; keeping
		// it would fail every start.
		if rerr := removeRecord(stateDir, ifname); rerr != nil {
			return nil, errors.Join(err, rerr)
		}
		return nil, fmt.Errorf("%s: %w (removed)", recordPath(stateDir, ifname), err)
	}
	if !ok {
		return nil, nil
	}
	if r.Backend == backendNetworksetup {
		if err := NewNetworksetup().restore(r.Services); err != nil {
			return &r, err
		}
	}
	if r.Backend == backendResolvconf {
		path, err := exec.LookPath("resolvconf")
		if err != nil {
			return &r, fmt.Errorf("a previous run left resolvconf entry %s, but resolvconf is not in $PATH to remove it: %w", r.Entry, err)
		}
		if err := deleteResolvconf(path, r.Entry); err != nil {
			return &r, err
		}
	}
	// systemd-resolved dropped the settings with the old link.
	return &r, removeRecord(stateDir, ifname)
}

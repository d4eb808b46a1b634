package hostdns

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/current-vpn/current/internal/atomicfile"
)

// Record is what a process applied, written to the state directory before
// the change, so that a successor can undo it after a crash.
type Record struct {
	Backend string `json:"backend"` // "resolvconf", "systemd-resolved" or "networksetup"
	// Entry is the resolvconf interface name (e.g. "tun.current0").
	Entry string `json:"entry,omitempty"`
	// Services are the macOS network services' settings before Apply
	// (networksetup).
	Services []ServiceDNS `json:"services,omitempty"`
}

// maxRecord bounds the file read back: a record is a few dozen bytes,
// or a few kilobytes with macOS's services.
const maxRecord = 64 << 10

// recordPath is the record of interface ifname in dir.
func recordPath(dir, ifname string) string {
	return filepath.Join(dir, "dns-"+ifname+".json")
}

// parseRecord decodes and checks a record file.
func parseRecord(b []byte) (Record, error) {
	if len(b) > maxRecord {
		return Record{}, fmt.Errorf("record is %d bytes, more than %d", len(b), maxRecord)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		return Record{}, fmt.Errorf("record: %v", err)
	}
	if r.Backend != backendNetworksetup && r.Services != nil {
		return Record{}, fmt.Errorf("record: a %s record has no services", r.Backend)
	}
	switch r.Backend {
	case backendNetworksetup:
		if r.Entry != "" {
			return Record{}, errors.New("record: a networksetup record has no entry")
		}
		if err := checkServices(r.Services); err != nil {
			return Record{}, fmt.Errorf("record: %v", err)
		}
	case backendResolvconf:
		if err := checkEntry(r.Entry); err != nil {
			return Record{}, fmt.Errorf("record: %v", err)
		}
	case backendResolved:
		if r.Entry != "" {
			return Record{}, errors.New("record: a systemd-resolved record has no entry")
		}
	default:
		return Record{}, fmt.Errorf("record: unknown backend %q", r.Backend)
	}
	return r, nil
}

// checkEntry keeps a resolvconf entry name to what we create: it is passed
// to resolvconf as an argument and names a file in its state directory.
func checkEntry(e string) error {
	if e == "" || len(e) > 64 || e[0] == '-' || e[0] == '.' {
		return fmt.Errorf("bad resolvconf entry %q", e)
	}
	for i := 0; i < len(e); i++ {
		c := e[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '@') {
			return fmt.Errorf("bad resolvconf entry %q", e)
		}
	}
	return nil
}

// writeRecord stores r atomically with mode 0600.
func writeRecord(dir, ifname string, r Record) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(recordPath(dir, ifname), append(b, '\n'), 0o600)
}

// readRecord returns the record of ifname in dir; ok is false without one.
func readRecord(dir, ifname string) (r Record, ok bool, err error) {
	f, err := os.Open(recordPath(dir, ifname))
	if errors.Is(err, fs.ErrNotExist) {
		return Record{}, false, nil
	}
	if err != nil {
		return Record{}, false, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxRecord+1))
	if err != nil {
		return Record{}, false, err
	}
	r, err = parseRecord(b)
	return r, err == nil, err
}

func removeRecord(dir, ifname string) error {
	err := os.Remove(recordPath(dir, ifname))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

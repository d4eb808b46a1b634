package tunnel

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/current-vpn/current/internal/atomicfile"
	"github.com/current-vpn/current/internal/secretfile"
	"github.com/current-vpn/current/session"
)

// The device's hello keys (docs/protocol.md 7.14): the HPKE key pairs its
// peers seal their hellos to, signed with the device's key, in one
// HelloKeyring that every session of the device shares. A key is current
// for helloKeyRotation and then stays installed as the previous key for as
// long again, so that hellos sealed to it by initiators that cached it
// still open; only after that does an initiator pay the round trip of a
// HelloKeyAnswer. The validity reaches one more rotation beyond, so that
// neither clock skew (10 min) nor a rotation that runs late retires a key
// that is still installed.
//
// The keys are written to helloKeysFile in StateDir (0600, replaced
// atomically), so that a restart keeps them and the peers' caches stay
// good; without a StateDir they live in memory only.

const (
	helloKeyRotation = 24 * time.Hour
	helloKeyLifetime = 3 * helloKeyRotation
	helloKeysFile    = "hello.keys"
	// maxHelloKeysFile bounds what loading reads: two key pairs of the
	// largest suite are under 16 KiB, base64 included.
	maxHelloKeysFile = 64 << 10
	helloKeysVersion = 1
)

// helloKeysOnDisk is the file: the current key pair and the previous one
// (absent for a first key), each as session.HelloKeyPair.MarshalBinary.
type helloKeysOnDisk struct {
	Version  int    `json:"version"`
	Current  []byte `json:"current"`
	Previous []byte `json:"previous,omitempty"`
}

// helloKeys is the device's keyring and the schedule that rotates it.
type helloKeys struct {
	ring *session.HelloKeyring
	// current and previous are the installed pairs as persisted; the
	// keyring owns the live copies.
	current, previous []byte
	// rotated is the current key's NotBefore.
	rotated time.Time
}

// loadHelloKeys opens the device's hello keys in dir (generating the
// first one when there is none) and installs them in a new keyring.
func (d *Device) loadHelloKeys(now time.Time) error {
	ring, err := session.NewHelloKeyring(d.cfg.Suite, 0)
	if err != nil {
		return err
	}
	hk := &helloKeys{ring: ring}
	d.hello = hk
	path := ""
	if d.cfg.StateDir != "" {
		path = filepath.Join(d.cfg.StateDir, helloKeysFile)
		st, err := readHelloKeys(path)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil && errors.Is(err, secretfile.ErrLoose):
			return err
		case err != nil:
			d.log.Warn("hello keys unusable, making new ones (peers will ask for the new key once)", "file", path, "err", err)
		default:
			if err := hk.install(st.Previous, st.Current); err != nil {
				d.log.Warn("hello keys unusable, making new ones (peers will ask for the new key once)", "file", path, "err", err)
			}
		}
	}
	if hk.current == nil || now.Sub(hk.rotated) >= helloKeyRotation {
		return d.rotateHelloKey(now)
	}
	return nil
}

// readHelloKeys reads the file, refusing one that group or others may
// access: its private keys must be presumed known to them.
func readHelloKeys(path string) (*helloKeysOnDisk, error) {
	b, err := secretfile.Read(path, maxHelloKeysFile)
	defer clear(b)
	var loose *secretfile.LooseError
	switch {
	case errors.As(err, &loose):
		return nil, fmt.Errorf("%w: %s has mode %04o; it must be 0600 (chmod 600 %s)", secretfile.ErrLoose, path, loose.Mode, path)
	case err != nil:
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var st helloKeysOnDisk
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, err
	}
	if st.Version != helloKeysVersion || len(st.Current) == 0 {
		return nil, fmt.Errorf("%s: unusable (version %d)", path, st.Version)
	}
	return &st, nil
}

// install puts previous (if any) and then current into the keyring.
func (hk *helloKeys) install(previous, current []byte) error {
	var pairs []*session.HelloKeyPair
	for _, b := range [][]byte{previous, current} {
		if len(b) == 0 {
			continue
		}
		k, err := session.ParseHelloKeyPair(b)
		if err != nil {
			for _, k := range pairs {
				k.Wipe()
			}
			return err
		}
		pairs = append(pairs, k)
	}
	for _, k := range pairs {
		if err := hk.ring.Install(k); err != nil {
			return err
		}
	}
	last := pairs[len(pairs)-1]
	clear(hk.previous)
	hk.previous, hk.current = nil, nil
	if len(previous) > 0 {
		hk.previous = append([]byte(nil), previous...)
	}
	hk.current = append([]byte(nil), current...)
	hk.rotated = last.Public.NotBefore
	return nil
}

// rotateHelloKey makes a new current key and persists both installed.
func (d *Device) rotateHelloKey(now time.Time) error {
	hk := d.hello
	k, err := session.NewHelloKey(d.cfg.Suite, d.cfg.PrivateKey, now, now.Add(helloKeyLifetime))
	if err != nil {
		return err
	}
	b, err := k.MarshalBinary()
	if err != nil {
		k.Wipe()
		return err
	}
	rotated := k.Public.NotBefore
	// Installed alone: the previous key keeps its replay set.
	if err := hk.ring.Install(k); err != nil {
		k.Wipe()
		clear(b)
		return err
	}
	clear(hk.previous)
	hk.previous, hk.current, hk.rotated = hk.current, b, rotated
	if d.cfg.StateDir == "" {
		return nil
	}
	st, err := json.Marshal(helloKeysOnDisk{Version: helloKeysVersion, Current: hk.current, Previous: hk.previous})
	if err != nil {
		return err
	}
	defer clear(st)
	if err := atomicfile.WriteFile(filepath.Join(d.cfg.StateDir, helloKeysFile), st, 0o600); err != nil {
		// The keys work all the same; a restart costs the peers one
		// round trip each.
		d.log.Warn("saving hello keys", "err", err)
	}
	return nil
}

// rotateHelloKeyIfDue runs in the sweeper.
func (d *Device) rotateHelloKeyIfDue(now time.Time) {
	if now.Sub(d.hello.rotated) < helloKeyRotation {
		return
	}
	if err := d.rotateHelloKey(now); err != nil {
		d.log.Warn("rotating the hello key", "err", err)
		return
	}
	d.log.Info("hello key rotated")
}

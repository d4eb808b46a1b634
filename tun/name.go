package tun

import (
	"fmt"
	"strings"
)

// tunName is the name to ask wireguard/tun for on platform goos, for the
// interface the configuration calls name.
//
// Linux takes any name and fills in a "%d". A macOS utun can only be
// called utun or utunN; for any other name the kernel picks the next free
// utunN (Device.Name says which), while the daemon keeps using the
// configured name for its control socket and state. FreeBSD creates a
// tunN and renames it, so any name fits that the kernel allows, but there
// is nothing to fill in a "%d".
func tunName(goos, name string) (string, error) {
	switch goos {
	case "darwin":
		var n uint
		if name == "utun" {
			return name, nil
		}
		if _, err := fmt.Sscanf(name, "utun%d", &n); err == nil && fmt.Sprintf("utun%d", n) == name {
			return name, nil
		}
		return "utun", nil
	case "freebsd":
		if strings.Contains(name, "%") {
			return "", fmt.Errorf("interface name %q: FreeBSD has no %%d numbering; name the interface in full", name)
		}
	}
	return name, nil
}

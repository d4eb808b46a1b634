package hostdns

import "fmt"

// Detect picks the backend as wg-quick and resolvectl decide:
// systemd-resolved when it runs, else resolvconf from $PATH.
func Detect() (Backend, error) {
	return detect(resolvedRunDir)
}

func detect(resolvedDir string) (Backend, error) {
	if conn, ok := resolvedRunning(resolvedDir); ok {
		return NewResolved(conn), nil
	}
	r, err := NewResolvconf()
	if err != nil {
		return nil, fmt.Errorf("%w: systemd-resolved does not run (no %s, or no %s on the system bus) and resolvconf is not in $PATH; install resolvconf or openresolv, or remove dns from the configuration",
			ErrUnavailable, resolvedDir, resolvedBus)
	}
	return r, nil
}

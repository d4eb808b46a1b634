package hostdns

import "fmt"

// Detect returns resolvconf, which FreeBSD's base system has (openresolv,
// /sbin/resolvconf), as wg-quick's freebsd backend uses it.
func Detect() (Backend, error) {
	r, err := NewResolvconf()
	if err != nil {
		return nil, fmt.Errorf("%w: resolvconf is not in $PATH; remove dns from the configuration or install openresolv", ErrUnavailable)
	}
	return r, nil
}

//go:build !linux

package hostdns

import "fmt"

// Detect finds no backend: resolver configuration is implemented for
// Linux only.
func Detect() (Backend, error) {
	return nil, fmt.Errorf("%w: DNS configuration is supported on Linux only", ErrUnavailable)
}

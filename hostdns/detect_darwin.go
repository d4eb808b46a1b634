package hostdns

// Detect returns the networksetup backend, which every macOS has.
func Detect() (Backend, error) {
	return NewNetworksetup(), nil
}

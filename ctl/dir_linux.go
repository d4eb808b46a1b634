package ctl

// DefaultDir is where control sockets live: /run is a tmpfs, so a socket
// never outlives a reboot.
const DefaultDir = "/run/current"

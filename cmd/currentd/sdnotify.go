package main

import (
	"net"
	"os"
)

// sdNotify sends a state string ("READY=1", "STOPPING=1") to systemd's
// notification socket. Without $NOTIFY_SOCKET (not run by systemd) it does
// nothing. The protocol is one datagram per message, so no library is
// needed; a leading '@' names an abstract socket, which Go's unix address
// handling already understands.
func sdNotify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	return err
}

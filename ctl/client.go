package ctl

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// ErrNotRunning is wrapped by Dial's error when nothing serves the socket:
// it does not exist or nobody listens on it.
var ErrNotRunning = errors.New("daemon not running")

// Client is a connection to a daemon's control socket. Calls are
// serialized: the protocol answers requests in order on a connection.
type Client struct {
	mu   sync.Mutex
	conn *net.UnixConn
	r    *bufio.Reader
	next int
	path string
}

// Dial connects to a control socket. Its errors match (errors.Is)
// ErrNotRunning when no daemon serves the socket and ErrPermissionDenied
// when the caller may not use it.
func Dial(path string) (*Client, error) {
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	switch {
	case err == nil:
		return &Client{conn: c, r: bufio.NewReaderSize(c, 64<<10), path: path}, nil
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.ECONNREFUSED):
		return nil, fmt.Errorf("%w: cannot connect to %s", ErrNotRunning, path)
	case errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		// In words, not the protocol code: this is what currentctl
		// prints. errors.Is(err, ErrPermissionDenied) still holds.
		return nil, Errorf(CodePermissionDenied, "permission denied connecting to %s: only root and the daemon's user may use it", path)
	}
	return nil, fmt.Errorf("connecting to %s: %w", path, err)
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// Call sends one request and decodes the result into result (unless nil).
// A daemon error is returned as an *Error. The context's deadline and
// cancellation apply to the whole exchange.
func (c *Client) Call(ctx context.Context, op string, params, result any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next++
	req := Request{Version: ProtocolVersion, ID: strconv.Itoa(c.next), Op: op}
	if params != nil {
		raw, err := json.Marshal(params)
		if err != nil {
			return err
		}
		req.Params = raw
	}
	line, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if len(line)+1 > MaxLineSize {
		return Errorf(CodeTooLarge, "request is longer than %d bytes", MaxLineSize)
	}
	deadline, _ := ctx.Deadline()
	c.conn.SetDeadline(deadline)
	// Cancellation interrupts a blocked read or write by moving the
	// deadline into the past.
	stop := context.AfterFunc(ctx, func() { c.conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	if _, err := c.conn.Write(append(line, '\n')); err != nil {
		// A daemon that refuses a connection (busy, permission denied)
		// answers and closes before reading the request, so the write
		// can fail with the refusal already waiting to be read.
		if respLine, rerr := readLine(c.r, maxResponseSize); rerr == nil {
			var resp Response
			if json.Unmarshal(respLine, &resp) == nil && resp.Error != nil {
				return resp.Error
			}
		}
		return c.ioError(ctx, err)
	}
	respLine, err := readLine(c.r, maxResponseSize)
	if err != nil {
		if errors.Is(err, errTooLong) {
			return fmt.Errorf("response longer than %d bytes", maxResponseSize)
		}
		return c.ioError(ctx, err)
	}
	// Not strict, unlike the server: the versioning rule lets a newer
	// daemon add response fields, which an older client must ignore.
	var resp Response
	if err := json.Unmarshal(respLine, &resp); err != nil {
		return fmt.Errorf("malformed response from the daemon: %v", err)
	}
	if resp.Error != nil {
		return resp.Error
	}
	if resp.Version != ProtocolVersion {
		return fmt.Errorf("daemon answered with protocol version %d, want %d", resp.Version, ProtocolVersion)
	}
	if resp.ID != req.ID {
		return fmt.Errorf("daemon answered request %q, want %q", resp.ID, req.ID)
	}
	if !resp.OK {
		return errors.New("daemon answered neither a result nor an error")
	}
	if result != nil {
		if err := json.Unmarshal(resp.Result, result); err != nil {
			return fmt.Errorf("malformed %s result from the daemon: %v", op, err)
		}
	}
	return nil
}

func (c *Client) ioError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return Errorf(CodeTimeout, "no answer from the daemon in time")
		}
		return ctx.Err()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return Errorf(CodeTimeout, "no answer from the daemon in time")
	}
	return fmt.Errorf("control connection to %s: %w", c.path, err)
}

// Status returns the interface and every peer, or one peer when peer (a
// name or public key) is not empty.
func (c *Client) Status(ctx context.Context, peer string) (*Status, error) {
	var st Status
	if err := c.Call(ctx, OpShow, ShowParams{Peer: peer}, &st); err != nil {
		return nil, err
	}
	return &st, nil
}

// AddPeer adds a peer, and writes it to the configuration file if save.
func (c *Client) AddPeer(ctx context.Context, p PeerSpec, save bool) error {
	return c.Call(ctx, OpPeerAdd, PeerAddParams{Peer: p, Save: save}, nil)
}

// RemovePeer removes a peer by name or public key.
func (c *Client) RemovePeer(ctx context.Context, peer string, save bool) error {
	return c.Call(ctx, OpPeerRemove, PeerRemoveParams{Peer: peer, Save: save}, nil)
}

// UpdatePeer changes a peer; p.Peer names it.
func (c *Client) UpdatePeer(ctx context.Context, p PeerUpdateParams) error {
	return c.Call(ctx, OpPeerUpdate, p, nil)
}

// Rekey updates the epoch of one peer (by name or key), or of every peer
// when peer is empty, and waits at most timeout (0: the daemon's default)
// for the new epochs. ctx should allow longer than timeout.
func (c *Client) Rekey(ctx context.Context, peer string, timeout time.Duration) (*RekeyReply, error) {
	p := RekeyParams{Peer: peer, All: peer == "", Timeout: Seconds(timeout)}
	var r RekeyReply
	if err := c.Call(ctx, OpRekey, p, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// SetPolicy changes the rekey policy and returns the policy in force.
func (c *Client) SetPolicy(ctx context.Context, p SetParams) (*PolicyReply, error) {
	var r PolicyReply
	if err := c.Call(ctx, OpSet, p, &r); err != nil {
		return nil, err
	}
	return &r, nil
}

// Metrics returns the Prometheus text exposition.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	var r MetricsReply
	if err := c.Call(ctx, OpMetrics, nil, &r); err != nil {
		return "", err
	}
	return r.Text, nil
}

// Version describes the daemon.
func (c *Client) Version(ctx context.Context) (*VersionInfo, error) {
	var v VersionInfo
	if err := c.Call(ctx, OpVersion, nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

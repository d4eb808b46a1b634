package ctl

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/current-vpn/current/config"
)

// Server limits and timeouts. They are variables only so that tests can
// shorten them.
var (
	// MaxConns bounds concurrent connections: currentctl uses one at a
	// time, so a handful covers scripts and a monitoring scraper, and a
	// client loop opening connections cannot exhaust file descriptors.
	MaxConns = 16
	// IdleTimeout is how long a connection may take to send a request
	// (whole line) before the server closes it, so that a stuck or
	// malicious client cannot hold one of MaxConns forever.
	IdleTimeout = 30 * time.Second
	// WriteTimeout bounds writing one response to a client that does not
	// read.
	WriteTimeout = 10 * time.Second
	// probeTimeout bounds the dial Listen uses to tell a live socket from
	// a stale one.
	probeTimeout = time.Second
)

// ErrInUse is returned by Listen when another daemon serves the interface.
var ErrInUse = errors.New("another daemon is running for this interface")

// SocketPath is the control socket of an interface.
func SocketPath(dir, iface string) string {
	if dir == "" {
		dir = DefaultDir
	}
	return filepath.Join(dir, iface+".sock")
}

// Server is the control socket of one interface.
type Server struct {
	// Logger receives one line per accepted change, and lines about
	// failed requests and refused connections (failLog bounds those); set
	// it before Serve. Nil discards.
	Logger *slog.Logger

	path  string
	uid   int
	ln    *net.UnixListener
	lock  *os.File
	ctx   context.Context
	stop  context.CancelFunc
	slots chan struct{}

	mu      sync.Mutex
	closed  bool
	serving bool
	fails   *failLog
	conns   map[net.Conn]struct{}
	wg      sync.WaitGroup
}

// Listen creates the control socket of interface iface in dir (DefaultDir
// when empty), owned by uid (the daemon's user; -1 for the current one).
//
// The directory is made 0700 and the socket 0600, both owned by uid: the
// directory is what protects the socket between bind and chmod. Only root
// and uid may then connect, and Serve checks the peer's credentials as
// well (PeerCred), so that loosened permissions do not open the socket to others.
//
// A lock file next to the socket, held while the Server lives, makes a
// second daemon for the same interface fail with ErrInUse; the kernel
// releases it if the daemon crashes, and the stale socket is then
// replaced. A live socket found without the lock (a daemon of another
// version, or the lock file deleted) is detected by dialing it, and also
// refused.
func Listen(iface, dir string, uid int) (*Server, error) {
	if err := checkIfaceName(iface); err != nil {
		return nil, err
	}
	if dir == "" {
		dir = DefaultDir
	}
	if uid < 0 {
		uid = os.Geteuid()
	}
	if err := prepareDir(dir, uid); err != nil {
		return nil, err
	}
	path := SocketPath(dir, iface)
	lock, err := lockFile(filepath.Join(dir, iface+".lock"), uid)
	if err != nil {
		return nil, err
	}
	ln, err := listen(path, uid)
	if err != nil {
		lock.Close()
		return nil, err
	}
	ctx, stop := context.WithCancel(context.Background())
	return &Server{
		path:  path,
		uid:   uid,
		ln:    ln,
		lock:  lock,
		ctx:   ctx,
		stop:  stop,
		slots: make(chan struct{}, MaxConns),
		conns: map[net.Conn]struct{}{},
	}, nil
}

// checkIfaceName keeps the name from escaping dir; config checks the rest.
func checkIfaceName(n string) error {
	if n == "" || n == "." || n == ".." || len(n) > 15 || strings.ContainsAny(n, "/\x00") {
		return fmt.Errorf("ctl: %q is not an interface name", n)
	}
	return nil
}

func prepareDir(dir string, uid int) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("ctl: %w", err)
	}
	// Lstat: a symbolic link planted in place of the directory would put
	// the socket wherever it points.
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("ctl: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("ctl: %s is not a directory", dir)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("ctl: %w", err)
	}
	return chown(dir, uid)
}

// chown gives path to uid when it is not ours already (only root may).
func chown(path string, uid int) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return fmt.Errorf("ctl: %w", err)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) == uid {
		return nil
	}
	if err := os.Lchown(path, uid, -1); err != nil {
		return fmt.Errorf("ctl: %w", err)
	}
	return nil
}

func lockFile(path string, uid int) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("ctl: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("ctl: %w (%s is locked)", ErrInUse, path)
		}
		return nil, fmt.Errorf("ctl: locking %s: %w", path, err)
	}
	if err := chown(path, uid); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// listen binds the socket, replacing a stale one.
func listen(path string, uid int) (*net.UnixListener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("ctl: %s exists and is not a socket; not replacing it", path)
		}
		c, err := net.DialTimeout("unix", path, probeTimeout)
		switch {
		case err == nil:
			c.Close()
			return nil, fmt.Errorf("ctl: %w (%s answers)", ErrInUse, path)
		case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENOENT):
			// Nobody listens: left behind by a crash.
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return nil, fmt.Errorf("ctl: removing stale socket: %w", err)
			}
		default:
			return nil, fmt.Errorf("ctl: probing %s: %w", path, err)
		}
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("ctl: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("ctl: %w", err)
	}
	if err := chown(path, uid); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// Path is the socket's path.
func (s *Server) Path() string { return s.path }

// Serve answers connections until Close, then returns nil. It may be
// called once.
func (s *Server) Serve(b Backend) error {
	s.mu.Lock()
	if s.serving {
		s.mu.Unlock()
		return errors.New("ctl: Serve called twice")
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s.serving = true
	s.fails = newFailLog(log, failureLogInterval)
	h := &handler{b: b, log: log, fails: s.fails, ctx: s.ctx, owner: s.uid}
	s.mu.Unlock()
	var backoff time.Duration
	for {
		c, err := s.ln.AcceptUnix()
		if err != nil {
			if s.isClosed() {
				return nil
			}
			// EMFILE and friends pass; retrying at once would spin.
			var ne net.Error
			if errors.As(err, &ne) && !errors.Is(err, net.ErrClosed) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				log.Warn("ctl: accept", "err", err)
				select {
				case <-time.After(backoff):
				case <-s.ctx.Done():
				}
				continue
			}
			return fmt.Errorf("ctl: %w", err)
		}
		backoff = 0
		select {
		case s.slots <- struct{}{}:
		default:
			refuse(c, Errorf(CodeBusy, "too many control connections (at most %d)", MaxConns))
			continue
		}
		if !s.track(c) {
			<-s.slots
			c.Close()
			return nil
		}
		go func() {
			defer s.wg.Done()
			defer func() { <-s.slots }()
			defer s.untrack(c)
			h.serveConn(c)
		}()
	}
}

// track registers a connection, unless Close has begun: Close waits for
// every registered connection, so none may start after it.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close stops accepting, cancels running requests (a rekey waiting for
// epochs returns), closes every connection, waits for their goroutines,
// removes the socket and releases the lock. It is safe to call more than
// once and before Serve.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.stop()
	err := s.ln.Close()
	s.wg.Wait()
	s.mu.Lock()
	fails := s.fails
	s.mu.Unlock()
	if fails != nil {
		fails.close()
	}
	// The lock file stays: unlinking it would let a daemon starting now
	// lock a file that the next one no longer sees.
	if lerr := s.lock.Close(); err == nil {
		err = lerr
	}
	return err
}

// refuse sends one error and closes the connection.
func refuse(c net.Conn, e *Error) {
	c.SetWriteDeadline(time.Now().Add(time.Second))
	if line, err := EncodeResponse(&Response{Version: ProtocolVersion, Error: e}); err == nil {
		c.Write(line)
	}
	c.Close()
}

// Cred is who is at the other end of a control connection, as the
// kernel recorded it when the client connected (peercred_*.go).
type Cred struct {
	Uid uint32
	// Pid is the client's process id, 0 where the kernel does not tell
	// it (FreeBSD).
	Pid int32
}

// PeerCred returns the credentials of the process at the other end of a
// unix socket connection.
func PeerCred(c *net.UnixConn) (*Cred, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *Cred
	var cerr error
	if err := rc.Control(func(fd uintptr) {
		cred, cerr = peerCred(int(fd))
	}); err != nil {
		return nil, err
	}
	return cred, cerr
}

// Authorize decides whether a client with these credentials may use a
// socket owned by owner: root and the owner only, whatever the file
// permissions say, since every operation can reroute traffic.
func Authorize(cred *Cred, owner int) error {
	if cred == nil {
		return Errorf(CodePermissionDenied, "no peer credentials")
	}
	if cred.Uid == 0 || int(cred.Uid) == owner {
		return nil
	}
	return Errorf(CodePermissionDenied, "uid %d may not use this socket (only root or uid %d)", cred.Uid, owner)
}

// handler answers the requests of connections.
type handler struct {
	b     Backend
	log   *slog.Logger
	fails *failLog
	ctx   context.Context
	owner int
}

func (h *handler) serveConn(c *net.UnixConn) {
	cred, err := PeerCred(c)
	if err == nil {
		err = Authorize(cred, h.owner)
	}
	if err != nil {
		h.refused(cred, err)
		refuse(c, wireError(err))
		return
	}
	r := bufio.NewReaderSize(c, 4096)
	for {
		c.SetReadDeadline(time.Now().Add(IdleTimeout))
		line, err := readLine(r, MaxLineSize)
		if errors.Is(err, errTooLong) {
			// The rest of the line is unread and cannot be skipped
			// reliably, so the connection ends after the error.
			h.reply(c, &Response{Version: ProtocolVersion, Error: Errorf(CodeTooLarge, "request is longer than %d bytes", MaxLineSize)})
			return
		}
		if len(line) == 0 && err != nil {
			return // EOF, idle timeout or Close: nothing to answer
		}
		resp := h.handle(line, cred)
		if !h.reply(c, resp) || err != nil {
			return
		}
	}
}

var errTooLong = errors.New("line too long")

// readLine returns the next line without its newline; a last line without
// one is returned with the read error.
func readLine(r *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		frag, err := r.ReadSlice('\n')
		if len(line)+len(frag) > limit {
			return nil, errTooLong
		}
		line = append(line, frag...)
		switch {
		case err == nil:
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return line, err
		}
	}
}

func (h *handler) reply(c net.Conn, resp *Response) bool {
	line, err := EncodeResponse(resp)
	if err != nil {
		// Only a Backend value that cannot be marshalled gets here.
		line, _ = EncodeResponse(&Response{Version: ProtocolVersion, ID: resp.ID, Error: Errorf(CodeInternal, "encoding the response: %v", err)})
	}
	c.SetWriteDeadline(time.Now().Add(WriteTimeout))
	_, err = c.Write(line)
	return err == nil
}

// handle answers one request line. A Backend panic is answered as an
// internal error instead of taking the tunnel down with the daemon.
func (h *handler) handle(line []byte, cred *Cred) (resp *Response) {
	resp = &Response{Version: ProtocolVersion}
	req, err := DecodeRequest(line)
	if req != nil {
		resp.ID = req.ID
	}
	if err != nil {
		resp.Error = wireError(err)
		return resp
	}
	defer func() {
		if p := recover(); p != nil {
			h.panicked(req.Op, p, debug.Stack(), cred)
			resp.Result = nil
			resp.Error = Errorf(CodeInternal, "internal error while handling %s", req.Op)
		}
	}()
	result, err := h.dispatch(req)
	if mutating(req.Op) {
		h.logChange(req, err, cred)
	}
	if err != nil {
		resp.Error = wireError(err)
		return resp
	}
	raw, err := json.Marshal(result)
	if err != nil {
		resp.Error = Errorf(CodeInternal, "encoding the result: %v", err)
		return resp
	}
	resp.OK, resp.Result = true, raw
	return resp
}

func mutating(op string) bool {
	switch op {
	case OpPeerAdd, OpPeerRemove, OpPeerUpdate, OpRekey, OpSet:
		return true
	}
	return false
}

func (h *handler) dispatch(req *Request) (any, error) {
	switch req.Op {
	case OpShow:
		var p ShowParams
		if err := DecodeParams(req.Params, &p); err != nil {
			return nil, err
		}
		return h.show(p)
	case OpPeerAdd:
		var p PeerAddParams
		if err := DecodeParams(req.Params, &p); err != nil {
			return nil, err
		}
		peer, err := p.Peer.Peer()
		if err != nil {
			return nil, err
		}
		return Empty{}, h.b.AddPeer(peer, p.Save)
	case OpPeerRemove:
		var p PeerRemoveParams
		if err := DecodeParams(req.Params, &p); err != nil {
			return nil, err
		}
		ref, err := ParsePeerRef(p.Peer)
		if err != nil {
			return nil, err
		}
		return Empty{}, h.b.RemovePeer(ref, p.Save)
	case OpPeerUpdate:
		var p PeerUpdateParams
		if err := DecodeParams(req.Params, &p); err != nil {
			return nil, err
		}
		ref, upd, err := p.parse()
		if err != nil {
			return nil, err
		}
		return Empty{}, h.b.UpdatePeer(ref, upd, p.Save)
	case OpRekey:
		var p RekeyParams
		if err := DecodeParams(req.Params, &p); err != nil {
			return nil, err
		}
		return h.rekey(p)
	case OpSet:
		var p SetParams
		if err := DecodeParams(req.Params, &p); err != nil {
			return nil, err
		}
		upd, err := p.parse()
		if err != nil {
			return nil, err
		}
		pol, err := h.b.SetPolicy(upd, p.Save)
		if err != nil {
			return nil, err
		}
		return PolicyReply{RekeyInterval: Seconds(pol.RekeyInterval), RekeyBytes: pol.RekeyBytes}, nil
	case OpMetrics:
		if err := DecodeParams(req.Params, &struct{}{}); err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		if err := h.b.Metrics(&buf); err != nil {
			return nil, err
		}
		return MetricsReply{Text: buf.String()}, nil
	case OpVersion:
		if err := DecodeParams(req.Params, &struct{}{}); err != nil {
			return nil, err
		}
		v := h.b.Version()
		v.Protocol, v.Ops = ProtocolVersion, Ops
		return v, nil
	}
	return nil, Errorf(CodeUnknownOp, "unknown op %q (known: %s)", req.Op, strings.Join(Ops, ", "))
}

func (h *handler) show(p ShowParams) (Status, error) {
	st := h.b.Status()
	if p.Peer != "" {
		ref, err := ParsePeerRef(p.Peer)
		if err != nil {
			return st, err
		}
		var sel []PeerStatus
		for _, ps := range st.Peers {
			if ref.Matches(ps.Name, ps.PublicKey) {
				sel = append(sel, ps)
			}
		}
		if len(sel) == 0 {
			return st, Errorf(CodeUnknownPeer, "no peer %q", ref)
		}
		st.Peers = sel
	}
	normalize(&st)
	return st, nil
}

// normalize keeps the schema's promise that lists are [] and not null.
func normalize(st *Status) {
	if st.Peers == nil {
		st.Peers = []PeerStatus{}
	}
	for i := range st.Peers {
		if st.Peers[i].AllowedIPs == nil {
			st.Peers[i].AllowedIPs = []netip.Prefix{}
		}
	}
}

func (p *PeerUpdateParams) parse() (PeerRef, PeerUpdate, error) {
	var upd PeerUpdate
	ref, err := ParsePeerRef(p.Peer)
	if err != nil {
		return ref, upd, err
	}
	if p.Endpoint != nil {
		var e config.Endpoint
		if *p.Endpoint != "" {
			if e, err = config.ParseEndpoint(*p.Endpoint); err != nil {
				return ref, upd, Errorf(CodeBadRequest, "endpoint: %v", err)
			}
		}
		upd.Endpoint = &e
	}
	if p.AllowedIPs != nil {
		if upd.AllowedIPs, err = parsePrefixes(p.AllowedIPs); err != nil {
			return ref, upd, err
		}
	}
	if p.PersistentKeepalive != nil {
		d := p.PersistentKeepalive.Duration()
		if err := checkKeepalive(d); err != nil {
			return ref, upd, err
		}
		upd.PersistentKeepalive = &d
	}
	if p.Transport != nil {
		t, err := config.ParseTransport(*p.Transport)
		if err != nil {
			return ref, upd, Errorf(CodeBadRequest, "transport: %v", err)
		}
		upd.Transport = &t
	}
	if upd.IsZero() {
		return ref, upd, Errorf(CodeBadRequest, "nothing to update: give endpoint, allowed_ips, persistent_keepalive_seconds or transport")
	}
	return ref, upd, nil
}

func (p *SetParams) parse() (PolicyUpdate, error) {
	var upd PolicyUpdate
	if p.RekeyInterval == nil && p.RekeyBytes == nil {
		return upd, Errorf(CodeBadRequest, "nothing to set: give rekey_interval_seconds or rekey_bytes")
	}
	if p.RekeyInterval != nil {
		d := p.RekeyInterval.Duration()
		if d < config.MinRekeyInterval {
			return upd, Errorf(CodeBadRequest, "rekey interval %s is too short: the minimum is %s", d, config.MinRekeyInterval)
		}
		upd.RekeyInterval = &d
	}
	if p.RekeyBytes != nil {
		if *p.RekeyBytes == 0 {
			return upd, Errorf(CodeBadRequest, "rekey bytes must be more than 0")
		}
		upd.RekeyBytes = p.RekeyBytes
	}
	return upd, nil
}

func (h *handler) rekey(p RekeyParams) (*RekeyReply, error) {
	var ref PeerRef
	switch {
	case p.All && p.Peer != "":
		return nil, Errorf(CodeBadRequest, "give peer or all, not both")
	case !p.All && p.Peer == "":
		return nil, Errorf(CodeBadRequest, "give peer, or all: true")
	case p.Peer != "":
		var err error
		if ref, err = ParsePeerRef(p.Peer); err != nil {
			return nil, err
		}
	}
	timeout := p.Timeout.Duration()
	switch {
	case timeout == 0:
		timeout = DefaultRekeyTimeout
	case timeout > MaxRekeyTimeout:
		return nil, Errorf(CodeBadRequest, "timeout %s is longer than the maximum, %s", timeout, MaxRekeyTimeout)
	}
	ctx, cancel := context.WithTimeout(h.ctx, timeout)
	defer cancel()
	results, err := h.b.Rekey(ctx, ref)
	if err != nil {
		return nil, err
	}
	reply := &RekeyReply{Results: make([]RekeyOutcome, 0, len(results))}
	for _, r := range results {
		out := RekeyOutcome{Peer: r.Peer, PublicKey: r.PublicKey.String(), Epoch: r.Epoch}
		if r.Err != nil {
			out.Epoch = 0
			out.Error = wireError(r.Err)
			if errors.Is(r.Err, context.DeadlineExceeded) {
				out.Error = Errorf(CodeTimeout, "no new epoch within %s", timeout)
			}
		}
		reply.Results = append(reply.Results, out)
	}
	// One peer asked for: its failure is the request's.
	if !p.All && len(reply.Results) == 1 && reply.Results[0].Error != nil {
		return nil, reply.Results[0].Error
	}
	return reply, nil
}

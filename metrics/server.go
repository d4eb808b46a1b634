package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/current-vpn/current/config"
)

// Path is the endpoint's only path; any other is 404.
const Path = "/metrics"

// The server's limits: a scraper sends a few hundred bytes of headers and
// reads one response; anything slower or bigger is not Prometheus.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 8 << 10
	// maxInFlight scrapes at once; more get 503 rather than piling up
	// status snapshots of a large hub.
	maxInFlight = 4
	// shutdownTimeout is how long Close lets a scrape finish.
	shutdownTimeout = 2 * time.Second
)

// Server is a running endpoint.
type Server struct {
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
	log  *slog.Logger
}

// Listen opens the endpoint's socket. It runs before the tunnel starts,
// so that a taken port stops the daemon before it touches the link. A
// unix socket left by a daemon that died is replaced; one that answers is
// in use.
func Listen(at config.MetricsListen) (net.Listener, error) {
	if at.Network == "unix" {
		if c, err := net.Dial("unix", at.Address); err == nil {
			c.Close()
			return nil, fmt.Errorf("metrics socket %s is in use", at.Address)
		}
		if err := os.Remove(at.Address); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("metrics socket: %w", err)
		}
		old := syscall.Umask(0o177)
		ln, err := net.Listen("unix", at.Address)
		syscall.Umask(old)
		if err != nil {
			return nil, fmt.Errorf("metrics socket: %w", err)
		}
		return ln, nil
	}
	ln, err := net.Listen(at.Network, at.Address)
	if err != nil {
		return nil, fmt.Errorf("metrics_listen: %w", err)
	}
	return ln, nil
}

// Handler is the endpoint: c's families and the client library's Go and
// process collectors on Path, 404 elsewhere.
func Handler(c prometheus.Collector, log *slog.Logger) (http.Handler, error) {
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{c, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	mux := http.NewServeMux()
	mux.Handle("GET "+Path, promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: maxInFlight,
		Timeout:             writeTimeout - time.Second,
	}))
	return mux, nil
}

// Serve answers on ln with h until Close.
func Serve(ln net.Listener, h http.Handler, log *slog.Logger) *Server {
	s := &Server{
		ln: ln,
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: readHeaderTimeout,
			ReadTimeout:       readTimeout,
			WriteTimeout:      writeTimeout,
			IdleTimeout:       idleTimeout,
			MaxHeaderBytes:    maxHeaderBytes,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		},
		done: make(chan struct{}),
		log:  log,
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics endpoint stopped", "err", err)
		}
	}()
	log.Info("metrics endpoint", "address", ln.Addr().String(), "path", Path)
	return s
}

// Addr is where the endpoint listens.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Close stops the endpoint, letting a scrape in progress finish for a
// moment, and removes a unix socket.
func (s *Server) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.log.Warn("closing the metrics endpoint", "err", err)
		s.srv.Close()
	}
	<-s.done
}

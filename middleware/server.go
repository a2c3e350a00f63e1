package middleware

import (
	"context"
	"errors"
	"io"
	"log"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pkgroute/pkgroute/internal/lograte"
)

// Server defaults used by [NewServer] for zero ServerConfig fields.
const (
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 15 * time.Second
	DefaultWriteTimeout      = 15 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	DefaultMaxHeaderBytes    = 64 << 10
)

// ServerConfig configures [NewServer]; zero fields take the defaults above.
type ServerConfig struct {
	// ReadHeaderTimeout bounds reading the request header (slow clients
	// holding connections open are cut off after it).
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading the whole request.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing the response. Hijacked (WebSocket)
	// connections are not affected.
	WriteTimeout time.Duration
	// IdleTimeout bounds the wait for the next request on a keep-alive
	// connection.
	IdleTimeout time.Duration
	// MaxHeaderBytes caps the request header size.
	MaxHeaderBytes int
	// Logger receives the server's own error reports (at warn level), at
	// most one of a kind per 10 s (the next one counts those left out in
	// "suppressed": a failing accept or a flood of bad TLS handshakes
	// repeats them without bound); nil discards them.
	Logger *slog.Logger
}

// NewServer returns an *http.Server for addr and h with safe timeouts:
// ReadHeaderTimeout 5 s, ReadTimeout 15 s, WriteTimeout 15 s, IdleTimeout
// 60 s and MaxHeaderBytes 64 KiB unless cfg says otherwise. "OPTIONS *"
// requests reach h (net/http would answer them itself, past every
// middleware); [Routes] answers them. With [Listener], the connection is
// closed after a request whose framing is ambiguous (see there).
func NewServer(addr string, h http.Handler, cfg ServerConfig) *http.Server {
	or := func(d, def time.Duration) time.Duration {
		if d > 0 {
			return d
		}
		return def
	}
	maxHeader := cfg.MaxHeaderBytes
	if maxHeader <= 0 {
		maxHeader = DefaultMaxHeaderBytes
	}
	var errLog *log.Logger
	if cfg.Logger != nil {
		errLog = log.New(serverLog{lograte.New(cfg.Logger, 0, nil)}, "", 0)
	} else {
		errLog = log.New(io.Discard, "", 0)
	}
	return &http.Server{
		Addr:              addr,
		Handler:           closeAmbiguous(h),
		ConnContext:       withFraming,
		ReadHeaderTimeout: or(cfg.ReadHeaderTimeout, DefaultReadHeaderTimeout),
		ReadTimeout:       or(cfg.ReadTimeout, DefaultReadTimeout),
		WriteTimeout:      or(cfg.WriteTimeout, DefaultWriteTimeout),
		IdleTimeout:       or(cfg.IdleTimeout, DefaultIdleTimeout),
		MaxHeaderBytes:    maxHeader,
		ErrorLog:          errLog,

		DisableGeneralOptionsHandler: true,
	}
}

// Shutdown stops srv gracefully: it stops accepting connections and waits
// for the requests in flight (http.Server.Shutdown) while it runs the drain
// funcs concurrently, typically the WebSocket endpoint's Shutdown, which
// hijacked connections need because http.Server does not track them. When
// ctx ends first, the remaining connections are closed. It returns when the
// server and every drain func are done, with their errors joined; drain
// funcs must therefore return soon after ctx ends.
func Shutdown(ctx context.Context, srv *http.Server, drains ...func(context.Context) error) error {
	errs := make([]error, len(drains)+1)
	var wg sync.WaitGroup
	for i, drain := range drains {
		wg.Go(func() { errs[i+1] = drain(ctx) })
	}
	if err := srv.Shutdown(ctx); err != nil {
		errs[0] = err
		if cerr := srv.Close(); cerr != nil && !errors.Is(cerr, http.ErrServerClosed) {
			errs[0] = errors.Join(err, cerr)
		}
	}
	wg.Wait()
	return errors.Join(errs...)
}

// serverLog writes net/http's error log lines to a rate-limited logger.
type serverLog struct{ l *lograte.Logger }

func (s serverLog) Write(p []byte) (int, error) {
	line := strings.TrimSuffix(string(p), "\n")
	s.l.LogKind(context.Background(), serverLogKind(line), slog.LevelWarn, line)
	return len(p), nil
}

// serverLogKind is the fixed start of a net/http log line: its words up to
// the first one with a digit (addresses, counts) or after the first one
// that ends with ':' past the "http:" prefix, at most six.
func serverLogKind(line string) string {
	words := strings.Fields(line)
	n := 0
	for n < len(words) && n < 6 {
		w := words[n]
		if strings.ContainsAny(w, "0123456789") {
			break
		}
		n++
		if n > 1 && strings.HasSuffix(w, ":") {
			break
		}
	}
	return strings.Join(words[:n], " ")
}

package middleware

import (
	"bufio"
	"net"
	"net/http"
)

// respWriter wraps a ResponseWriter for the layers of this package: it
// records the status and the body size, lets its owner run code just before
// the header is written (beforeHeader) or answer in place of the inner
// handler (intercept), and keeps Flush, Hijack and Unwrap working.
type respWriter struct {
	w        http.ResponseWriter
	status   int // final status; 0 until the header is written
	bytes    int64
	hijacked bool
	discard  bool // intercepted: later body writes are dropped

	// beforeHeader, when set, runs before each header write that reaches w
	// (informational ones included).
	beforeHeader func(code int)
	// intercept, when set, runs before the final header write; when it
	// returns true it has answered on w itself, the inner handler's header
	// is not written and its body is discarded.
	intercept func(code int) bool
}

func (x *respWriter) Header() http.Header { return x.w.Header() }

// written reports whether the response has started (or the connection was
// taken over), so that nothing else can be answered on it.
func (x *respWriter) written() bool { return x.status != 0 || x.hijacked }

func (x *respWriter) WriteHeader(code int) {
	if code >= 100 && code <= 199 && code != http.StatusSwitchingProtocols {
		if x.status == 0 && !x.hijacked {
			if x.beforeHeader != nil {
				x.beforeHeader(code)
			}
			x.w.WriteHeader(code)
		}
		return
	}
	if x.written() {
		return
	}
	x.status = code
	if x.intercept != nil && x.intercept(code) {
		x.discard = true
		return
	}
	if x.beforeHeader != nil {
		x.beforeHeader(code)
	}
	x.w.WriteHeader(code)
}

func (x *respWriter) Write(p []byte) (int, error) {
	if x.status == 0 && !x.hijacked {
		x.WriteHeader(http.StatusOK)
	}
	if x.discard {
		return len(p), nil
	}
	n, err := x.w.Write(p)
	x.bytes += int64(n)
	return n, err
}

// Flush implements http.Flusher.
func (x *respWriter) Flush() {
	if x.status == 0 && !x.hijacked {
		x.WriteHeader(http.StatusOK)
	}
	if x.discard {
		return
	}
	_ = http.NewResponseController(x.w).Flush()
}

// Hijack implements http.Hijacker (gorilla/websocket asserts it directly).
func (x *respWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(x.w).Hijack()
	if err == nil {
		x.hijacked = true
		if x.status == 0 {
			x.status = http.StatusSwitchingProtocols
		}
	}
	return c, rw, err
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (x *respWriter) Unwrap() http.ResponseWriter { return x.w }

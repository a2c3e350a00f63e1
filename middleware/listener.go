package middleware

import (
	"bytes"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/pkgroute/pkgroute/internal/httperr"
)

// Listener wraps ln so that the answers net/http gives by itself, before
// any handler runs, follow the wire contract like every other error: a
// request without a Host header or with a malformed one (400
// invalid_host), a request header over the server's MaxHeaderBytes (431
// request_too_large), a malformed request line or header (400
// invalid_request), an unsupported protocol version (505) or
// Transfer-Encoding (501, both invalid_request). They get the JSON error
// body, the security headers of cfg (as [SecurityHeaders] sends them) and a
// generated X-Correlation-ID, instead of net/http's plain text. The
// connection is closed after them, as net/http does.
//
// It also follows the framing of the requests read, and with a server made
// by [NewServer] the connection is closed after the response to a request
// whose framing is ambiguous: Content-Length together with
// Transfer-Encoding (which net/http serves as chunked, dropping
// Content-Length before any handler sees it), or Transfer-Encoding in an
// HTTP/1.0 request (RFC 9112 §6.1, §6.3). Bytes after such a request are
// never read as another request, whatever a proxy in front made of them.
// The same happens when the framing of a request cannot be followed (a
// chunk-size line longer than 64 bytes without an extension, for one);
// requests net/http refuses close the connection anyway.
//
// Everything else written to the connections passes through untouched,
// hijacked (WebSocket) connections included.
func Listener(ln net.Listener, cfg SecurityHeadersConfig) net.Listener {
	var head strings.Builder
	for _, kv := range securityHeaders(cfg) {
		head.WriteString(kv[0] + ": " + kv[1] + "\r\n")
	}
	return &errListener{Listener: ln, headers: head.String()}
}

type errListener struct {
	net.Listener
	headers string // the security headers, one "Name: value\r\n" each
}

// Accept wraps the accepted connection.
func (l *errListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	ec := &errConn{Conn: c, headers: l.headers}
	ec.framing.wake = func() { _ = c.SetReadDeadline(time.Now()) }
	return ec, nil
}

type errConn struct {
	net.Conn
	headers  string
	framing  framing
	upgraded atomic.Bool // a 101 was written: the bytes are no longer HTTP
}

// Read follows the requests' framing (see framing) on the bytes read,
// until the connection is upgraded.
func (c *errConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 && !c.framing.done {
		if c.upgraded.Load() {
			c.framing.done = true
		} else {
			c.framing.feed(p[:n])
		}
	}
	return n, err
}

// Write rewrites net/http's own error answers (see Listener) and passes
// everything else on.
func (c *errConn) Write(p []byte) (int, error) {
	if c.upgraded.Load() {
		return c.Conn.Write(p)
	}
	if bytes.HasPrefix(p, []byte("HTTP/1.1 101 ")) {
		c.upgraded.Store(true)
		return c.Conn.Write(p)
	}
	status, detail, ok := serverError(p)
	if !ok {
		return c.Conn.Write(p)
	}
	if _, err := c.Conn.Write(c.answer(status, detail)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// errorHeaders follows the status line of every answer net/http writes by
// itself (net/http's server.go); no answer through a handler has it,
// because those carry a Date header after Connection.
const errorHeaders = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"

// serverError reports whether p is a whole answer that net/http wrote by
// itself, with its status and the detail after "Status Text: " in its
// status line ("" when none).
func serverError(p []byte) (status int, detail string, ok bool) {
	rest, found := bytes.CutPrefix(p, []byte("HTTP/1.1 "))
	if !found || len(rest) < 4 || (rest[0] != '4' && rest[0] != '5') || rest[3] != ' ' {
		return 0, "", false
	}
	line, body, found := bytes.Cut(rest, []byte(errorHeaders))
	if !found || bytes.IndexByte(line, '\r') >= 0 {
		return 0, "", false
	}
	// The body repeats the status line, except for the Transfer-Encoding
	// answer.
	if !bytes.Equal(body, line) && string(body) != "Unsupported transfer encoding" {
		return 0, "", false
	}
	status, err := strconv.Atoi(string(line[:3]))
	if err != nil {
		return 0, "", false
	}
	_, detail, _ = strings.Cut(string(line[4:]), ": ")
	return status, detail, true
}

// answer is the contract's answer for a net/http error answer.
func (c *errConn) answer(status int, detail string) []byte {
	code, msg := "invalid_request", "malformed HTTP request"
	switch {
	case status == http.StatusRequestHeaderFieldsTooLarge:
		code, msg = "request_too_large", "request header too large"
	case status == http.StatusNotImplemented:
		msg = "unsupported transfer encoding"
	case strings.Contains(detail, "Host header"):
		code, msg = "invalid_host", detail
	case detail != "":
		msg = "malformed HTTP request: " + detail
	}
	body := httperr.Body(code, msg, nil)
	var b strings.Builder
	b.WriteString("HTTP/1.1 " + strconv.Itoa(status) + " " + http.StatusText(status) + "\r\n")
	b.WriteString(c.headers)
	b.WriteString("X-Correlation-Id: " + uuid.NewString() + "\r\n")
	b.WriteString("Content-Type: " + contentTypeJSON + "\r\n")
	b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n")
	b.WriteString("Connection: close\r\n\r\n")
	b.Write(body)
	return []byte(b.String())
}

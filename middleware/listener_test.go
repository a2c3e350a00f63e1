package middleware_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pkgroute/pkgroute/middleware"
)

// serveListener serves h through middleware.Listener on loopback with a 1 KiB
// header cap and returns the address.
func serveListener(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := middleware.NewServer("", h, middleware.ServerConfig{MaxHeaderBytes: 1024})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(middleware.Listener(ln, middleware.SecurityHeadersConfig{})) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
		require.ErrorIs(t, <-done, http.ErrServerClosed)
	})
	return ln.Addr().String()
}

// rawRequest writes req on a new connection and reads one response.
func rawRequest(t *testing.T, addr, req string) (*http.Response, []byte) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = io.WriteString(c, req)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return resp, body
}

// TestListenerAnswersNetHTTPErrors sends the requests that net/http refuses
// before any handler runs and checks that each answer follows the contract.
func TestListenerAnswersNetHTTPErrors(t *testing.T) {
	handled := make(chan string, 10)
	addr := serveListener(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handled <- r.URL.Path
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Connection", "close")
		_, _ = io.WriteString(w, "ok")
	}))

	tests := []struct {
		name   string
		req    string
		status int
		code   string
		msg    string
	}{
		{"missing Host", "GET / HTTP/1.1\r\n\r\n",
			400, "invalid_host", "missing required Host header"},
		{"malformed Host", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
			400, "invalid_host", "malformed Host header"},
		{"header too large", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 8<<10) + "\r\n\r\n",
			431, "request_too_large", "request header too large"},
		{"invalid header name", "GET / HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n",
			400, "invalid_request", "malformed HTTP request: invalid header name"},
		{"garbage request line", "NONSENSE\r\n\r\n",
			400, "invalid_request", "malformed HTTP request"},
		{"unsupported protocol", "GET / HTTP/9.9\r\nHost: x\r\n\r\n",
			505, "invalid_request", "malformed HTTP request: unsupported protocol version"},
		{"differing Content-Length", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
			400, "invalid_request", "malformed HTTP request"},
		{"unsupported Transfer-Encoding", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
			501, "invalid_request", "unsupported transfer encoding"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := rawRequest(t, addr, tt.req)
			assert.Equal(t, tt.status, resp.StatusCode)
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			assert.True(t, resp.Close, "connection closed after the answer")
			assertSecurityHeaders(t, resp.Header)
			assert.Regexp(t, `^[0-9a-f-]{36}$`, resp.Header.Get("X-Correlation-ID"))
			var got struct {
				Error struct {
					Code    string `json:"code"`
					Msg     string `json:"msg"`
					Details any    `json:"details"`
				} `json:"error"`
			}
			require.NoError(t, json.Unmarshal(body, &got), string(body))
			assert.Equal(t, tt.code, got.Error.Code)
			assert.Equal(t, tt.msg, got.Error.Msg)
			assert.Nil(t, got.Error.Details)
			assert.JSONEq(t, `{"error":{"code":"`+tt.code+`","msg":"`+tt.msg+`","details":null}}`, string(body))
		})
	}
	require.Empty(t, handled, "no refused request reached the handler")

	// A handler's own answer, even one as plain as net/http's, passes
	// untouched.
	resp, body := rawRequest(t, addr, "GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
	assert.Equal(t, 200, resp.StatusCode)
	assert.Equal(t, "ok", string(body))
	assert.Equal(t, "text/plain; charset=utf-8", resp.Header.Get("Content-Type"))
	assert.Equal(t, "/plain", <-handled)
}

// TestListenerPassesHijackedConnections checks that a hijacked connection
// reads and writes through the wrapper unchanged.
func TestListenerPassesHijackedConnections(t *testing.T) {
	addr := serveListener(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, rw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			panic(err)
		}
		defer c.Close()
		// Looks like net/http's own error answer but is the handler's.
		_, _ = io.WriteString(rw, "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nraw")
		_ = rw.Flush()
	}))
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	got, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, io.EOF) {
		require.NoError(t, err)
	}
	assert.Equal(t, "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nraw", string(got))
}

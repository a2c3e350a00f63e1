package middleware_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pkgroute/pkgroute/middleware"
)

// TestChunkSizeOverTheLimitIsRefusedAtOnce sends a chunk-size line that
// declares more than the body limit and then nothing: the answer is 413 at
// once, not when the read timeout (an hour here) ends the wait for the
// chunk's data; whether the line comes with the header or while the
// handler already waits for the body.
func TestChunkSizeOverTheLimitIsRefusedAtOnce(t *testing.T) {
	reading := make(chan struct{}, 4)
	h := middleware.BodyLimit(middleware.BodyLimitConfig{MaxBytes: 1 << 20})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			reading <- struct{}{}
			if _, err := io.ReadAll(r.Body); err != nil {
				return
			}
			_, _ = io.WriteString(w, "read")
		}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := middleware.NewServer("", h, middleware.ServerConfig{ReadTimeout: time.Hour, WriteTimeout: time.Hour})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(middleware.Listener(ln, middleware.SecurityHeadersConfig{})) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
		require.ErrorIs(t, <-done, http.ErrServerClosed)
	})

	const head = "POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
	for _, tc := range []struct {
		name   string
		before string // sent before the handler runs
		after  string // sent once it waits for the body
		status int
	}{
		{"with the header", head + "ffffffffffff\r\n", "", 413},
		{"while the handler reads", head, "ffffffffffff\r\n", 413},
		{"after chunks within the limit", head + "80000\r\n" + string(make([]byte, 0x80000)) + "\r\n", "80001\r\n", 413},
		{"within the limit", head, "5\r\nhello\r\n0\r\n\r\n", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", ln.Addr().String())
			require.NoError(t, err)
			defer c.Close()
			// A generous bound for a failing test, far below the read timeout.
			require.NoError(t, c.SetDeadline(time.Now().Add(time.Minute)))
			_, err = io.WriteString(c, tc.before)
			require.NoError(t, err)
			if tc.after != "" {
				<-reading
				_, err = io.WriteString(c, tc.after)
				require.NoError(t, err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, tc.status, resp.StatusCode)
			if tc.status == 413 {
				assert.True(t, resp.Close, "the connection is closed after the answer")
				body, _ := io.ReadAll(resp.Body)
				assert.Contains(t, string(body), `"code":"request_too_large"`)
			}
			for len(reading) > 0 {
				<-reading
			}
		})
	}
}

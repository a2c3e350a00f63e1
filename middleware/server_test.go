package middleware_test

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pkgroute/pkgroute/middleware"
)

func TestNewServerDefaults(t *testing.T) {
	h := http.NotFoundHandler()
	srv := middleware.NewServer(":8080", h, middleware.ServerConfig{})
	assert.Equal(t, ":8080", srv.Addr)
	assert.Equal(t, 5*time.Second, srv.ReadHeaderTimeout)
	assert.Equal(t, 15*time.Second, srv.ReadTimeout)
	assert.Equal(t, 15*time.Second, srv.WriteTimeout)
	assert.Equal(t, 60*time.Second, srv.IdleTimeout)
	assert.Equal(t, 64<<10, srv.MaxHeaderBytes)
	assert.NotNil(t, srv.ErrorLog)

	srv = middleware.NewServer("", h, middleware.ServerConfig{ReadHeaderTimeout: time.Second, MaxHeaderBytes: 1024, IdleTimeout: time.Minute * 2})
	assert.Equal(t, time.Second, srv.ReadHeaderTimeout)
	assert.Equal(t, 1024, srv.MaxHeaderBytes)
	assert.Equal(t, 2*time.Minute, srv.IdleTimeout)
	assert.Equal(t, 15*time.Second, srv.ReadTimeout)
}

// serve starts srv on a loopback port and stops it at cleanup.
func serve(t *testing.T, srv *http.Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return ln.Addr().String()
}

// Slowloris: clients dribbling their headers one byte per second are cut
// off after ReadHeaderTimeout while a normal client keeps being answered
// quickly.
func TestSlowlorisClosedAfterReadHeaderTimeout(t *testing.T) {
	const (
		slowClients   = 20
		headerTimeout = time.Second
	)
	st := newStack(t)
	srv := middleware.NewServer("", st.handler, middleware.ServerConfig{ReadHeaderTimeout: headerTimeout})
	addr := serve(t, srv)

	attackDone := make(chan struct{})
	var wg sync.WaitGroup
	closedAfter := make([]time.Duration, slowClients)
	for i := range slowClients {
		c, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		start := time.Now()
		stop := make(chan struct{})
		wg.Go(func() { // dribble the request line, one byte per second
			defer c.Close()
			ticker := time.NewTicker(time.Second)
			defer ticker.Stop()
			msg := []byte("GET /ok HTTP/1.1\r\nHost: api.example.com\r\nX-Pad: aaaaaaaaaaaaaaaa")
			for _, b := range msg {
				if _, err := c.Write([]byte{b}); err != nil {
					return
				}
				select {
				case <-stop:
					return
				case <-attackDone:
					return
				case <-ticker.C:
				}
			}
		})
		wg.Go(func() { // wait for the server to hang up
			defer close(stop)
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, _ = io.Copy(io.Discard, c)
			closedAfter[i] = time.Since(start)
		})
	}

	// Meanwhile a normal client.
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	var served, slow atomic.Int64
	normalDone := make(chan struct{})
	go func() {
		defer close(normalDone)
		deadline := time.Now().Add(headerTimeout + 500*time.Millisecond)
		for time.Now().Before(deadline) {
			req, _ := http.NewRequest("GET", "http://"+addr+"/ok", nil)
			req.Host = "api.example.com"
			start := time.Now()
			resp, err := client.Do(req)
			if err != nil {
				continue
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				served.Add(1)
			}
			if time.Since(start) > time.Second {
				slow.Add(1)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	<-normalDone
	wg.Wait()
	close(attackDone)

	for i, d := range closedAfter {
		assert.GreaterOrEqual(t, d, headerTimeout-100*time.Millisecond, "client %d closed too early", i)
		assert.Less(t, d, headerTimeout+3*time.Second, "client %d closed too late", i)
	}
	assert.GreaterOrEqual(t, served.Load(), int64(5), "normal requests answered during the attack")
	assert.Zero(t, slow.Load(), "normal requests that took over a second")
}

func TestShutdownDrains(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	var once sync.Once
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(started) })
		<-release
		_, _ = io.WriteString(w, "done")
	})
	srv := middleware.NewServer("", h, middleware.ServerConfig{})
	addr := serve(t, srv)

	respCh := make(chan int, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			respCh <- 0
			return
		}
		resp.Body.Close()
		respCh <- resp.StatusCode
	}()
	<-started

	var drained atomic.Int64
	drain := func(ctx context.Context) error {
		_, ok := ctx.Deadline()
		assert.True(t, ok, "the drain gets the shutdown context")
		drained.Add(1)
		return nil
	}
	failing := func(ctx context.Context) error { drained.Add(1); return errors.New("hub: drain failed") }

	shutdownErr := make(chan error, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go func() { shutdownErr <- middleware.Shutdown(ctx, srv, drain, failing) }()

	select {
	case <-shutdownErr:
		t.Fatal("Shutdown returned while a request was in flight")
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	err := <-shutdownErr
	require.Error(t, err)
	assert.Equal(t, "hub: drain failed", err.Error())
	assert.Equal(t, int64(2), drained.Load())
	assert.Equal(t, http.StatusOK, <-respCh, "the in-flight request finished")
}

func TestShutdownDeadlineClosesConnections(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	srv := middleware.NewServer("", h, middleware.ServerConfig{})
	addr := serve(t, srv)
	errCh := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
		}
		errCh <- err
	}()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := middleware.Shutdown(ctx, srv)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Error(t, <-errCh, "the stuck connection was closed")
}

// "OPTIONS *" goes through the handler: security headers, host checks and
// the correlation id apply to it as to any request.
func TestOptionsStarPassesTheStack(t *testing.T) {
	mux := http.NewServeMux()
	h := middleware.Chain(
		middleware.SecurityHeaders(middleware.SecurityHeadersConfig{}),
		middleware.CorrelationID(middleware.CorrelationIDConfig{}),
		middleware.TrustedHosts(middleware.TrustedHostsConfig{Hosts: []string{"good.example"}}),
	)(middleware.Routes(mux))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := middleware.NewServer("", h, middleware.ServerConfig{})
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	for _, tt := range []struct {
		req    string
		status int
	}{
		{"OPTIONS * HTTP/1.1\r\nHost: good.example\r\nConnection: close\r\n\r\n", 200},
		{"OPTIONS * HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n", 400},
	} {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		_, err = io.WriteString(c, tt.req)
		require.NoError(t, err)
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err)
		body, _ := io.ReadAll(res.Body)
		c.Close()
		assert.Equal(t, tt.status, res.StatusCode, "%s", body)
		assert.Equal(t, "DENY", res.Header.Get("X-Frame-Options"))
		assert.NotEmpty(t, res.Header.Get("X-Correlation-ID"))
		if tt.status == 400 {
			assert.Contains(t, string(body), `"invalid_host"`)
		} else {
			assert.Empty(t, body)
		}
	}
}

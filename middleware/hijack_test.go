package middleware_test

import (
	"bufio"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pkgroute/pkgroute/middleware"
)

// A WebSocket upgrade works through every layer of the stack (each wrapper
// keeps http.Hijacker) and is logged and counted with status 101.
func TestWebSocketUpgradeThroughStack(t *testing.T) {
	m, err := middleware.NewMetrics(middleware.MetricsConfig{Registerer: prometheus.NewRegistry()})
	require.NoError(t, err)
	mux := http.NewServeMux()
	up := websocket.Upgrader{}
	mux.HandleFunc("GET /web", func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		mt, msg, err := c.ReadMessage()
		if err != nil {
			return
		}
		_ = c.WriteMessage(mt, append([]byte("echo:"), msg...))
	})
	logs := &syncBuffer{}
	h := middleware.Chain(
		middleware.SecurityHeaders(middleware.SecurityHeadersConfig{}),
		middleware.CorrelationID(middleware.CorrelationIDConfig{Logger: jsonLogger(logs)}),
		middleware.Recover(middleware.RecoverConfig{}),
		middleware.ClientIP(middleware.ClientIPConfig{}),
		middleware.AccessLog(middleware.AccessLogConfig{}),
		m.Middleware,
		middleware.TrustedHosts(middleware.TrustedHostsConfig{Hosts: []string{"127.0.0.1"}}),
		middleware.BodyLimit(middleware.BodyLimitConfig{}),
	)(middleware.Routes(mux))
	srv := httptest.NewServer(h)
	defer srv.Close()

	c, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(srv.URL, "http")+"/web", nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusSwitchingProtocols, resp.StatusCode)
	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte("hi")))
	_, msg, err := c.ReadMessage()
	require.NoError(t, err)
	assert.Equal(t, "echo:hi", string(msg))
	require.NoError(t, c.Close())

	require.Eventually(t, func() bool { return strings.Contains(logs.String(), `"msg":"http request"`) }, 5*time.Second, 10*time.Millisecond)
	lines := accessLines(t, logs)
	require.Len(t, lines, 1)
	assert.EqualValues(t, 101, lines[0]["status"])
	assert.Equal(t, "/web", lines[0]["route"])
}

// Flushing works through the stack: a streamed response arrives in parts.
func TestFlushThroughStack(t *testing.T) {
	mux := http.NewServeMux()
	next := make(chan struct{})
	mux.HandleFunc("GET /stream", func(w http.ResponseWriter, r *http.Request) {
		f, ok := w.(http.Flusher)
		if !ok {
			http.Error(w, "no flusher", 500)
			return
		}
		_, _ = io.WriteString(w, "first\n")
		f.Flush()
		<-next
		_, _ = io.WriteString(w, "second\n")
	})
	m, err := middleware.NewMetrics(middleware.MetricsConfig{})
	require.NoError(t, err)
	h := middleware.Chain(
		middleware.SecurityHeaders(middleware.SecurityHeadersConfig{}),
		middleware.CorrelationID(middleware.CorrelationIDConfig{}),
		middleware.Recover(middleware.RecoverConfig{}),
		middleware.AccessLog(middleware.AccessLogConfig{}),
		m.Middleware,
		middleware.BodyLimit(middleware.BodyLimitConfig{}),
	)(middleware.Routes(mux))
	srv := httptest.NewServer(h)
	defer srv.Close()
	var once sync.Once
	release := func() { once.Do(func() { close(next) }) }
	defer release() // before srv.Close, which waits for the handler

	resp, err := srv.Client().Get(srv.URL + "/stream")
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"))
	br := bufio.NewReader(resp.Body)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "first\n", line, "arrived before the handler finished")
	release()
	line, err = br.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "second\n", line)
}

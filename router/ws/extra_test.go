package ws_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/internal/errkind"
	"github.com/pkgroute/pkgroute/ratelimit"
	"github.com/pkgroute/pkgroute/router"
	"github.com/pkgroute/pkgroute/router/ws"
	"github.com/pkgroute/pkgroute/router/ws/wstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestPlainGETRefused(t *testing.T) {
	f := newFixture(t, ws.Config{Authenticator: fakeAuth})
	resp, err := http.Get(f.srv.URL + "/web")
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	assert.Equal(t, 0.0, f.counter("ws_connections_total", "status", "accepted"))
}

func TestAuthenticatorUnavailable(t *testing.T) {
	down := auth.AuthenticatorFunc(func(context.Context, string) (*auth.Principal, error) {
		return nil, errkind.New(errkind.Unavailable, "jwks unreachable")
	})
	f := newFixture(t, ws.Config{Authenticator: down})
	_, err := wstest.Dial(ctxT(t), f.url, "tok")
	var he *wstest.HandshakeError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, http.StatusServiceUnavailable, he.StatusCode)
	assert.Contains(t, string(he.Body), `"code":"service_unavailable"`)

	_, err = wstest.Dial(ctxT(t), f.url, "tok", wstest.FirstMessage())
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, websocket.CloseInternalServerErr, ce.Code)
}

func TestHandlerPanicKeepsConnection(t *testing.T) {
	f := newFixture(t, ws.Config{Authenticator: fakeAuth})
	f.r.Register(50, router.HandlerFunc[pkg](func(context.Context, *router.Request[pkg]) router.Response {
		panic("boom")
	}), router.Authenticated())
	c := f.dial("user.ada")
	m, err := c.Call(ctxT(t), 50, nil)
	require.NoError(t, err)
	assert.Equal(t, "internal_error", m.Error().Code)
	m, err = c.Call(ctxT(t), int64(pkgPing), nil)
	require.NoError(t, err)
	assert.Equal(t, router.StatusOK, m.StatusCode())
}

func TestShutdownHookWithHTTPServer(t *testing.T) {
	r := router.New[pkg](router.Config{})
	r.Register(pkgPing, router.HandlerFunc[pkg](func(ctx context.Context, req *router.Request[pkg]) router.Response {
		return router.Response{Data: req.Data}
	}), router.Authenticated())
	e := ws.New(r, ws.Config{Authenticator: fakeAuth, CloseGrace: 200 * time.Millisecond})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: e, ReadHeaderTimeout: time.Second}
	srv.RegisterOnShutdown(e.ShutdownHook(2 * time.Second))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	c, err := wstest.Dial(ctxT(t), "ws://"+ln.Addr().String(), "user.ada")
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, srv.Shutdown(ctx))
	require.ErrorIs(t, <-served, http.ErrServerClosed)
	waitClosed(t, c, websocket.CloseGoingAway, "server shutting down")
	// The hook runs in its own goroutine; Shutdown again waits for it to end.
	require.NoError(t, e.Shutdown(ctx))
	assert.Equal(t, 0, e.ActiveConnections())
}

func TestConnLimitMetrics(t *testing.T) {
	f := newFixture(t, ws.Config{Authenticator: fakeAuth, MaxConnsPerUser: 1})
	f.dial("user.ada")
	_, err := wstest.Dial(ctxT(t), f.url, "user.ada")
	require.Error(t, err)
	assert.Equal(t, 1.0, f.counter("rate_limit_hits_total", "limit_type", "connections"))
	assert.False(t, errors.Is(err, context.DeadlineExceeded))
	assert.True(t, strings.Contains(err.Error(), "429"))
}

func TestNoGoroutineSurvivesClosedConnections(t *testing.T) {
	f := newFixture(t, ws.Config{Authenticator: fakeAuth})
	baseline := goleak.IgnoreCurrent()
	var clients []*wstest.Client
	for i, opt := range [][]wstest.Option{nil, {wstest.FirstMessage()}, nil} {
		c, err := wstest.Dial(ctxT(t), f.url, "user.u"+strconv.Itoa(i), opt...)
		require.NoError(t, err)
		clients = append(clients, c)
		_, err = c.Call(ctxT(t), int64(pkgPing), nil)
		require.NoError(t, err)
		require.NoError(t, f.e.Broadcast(ctxT(t), pkgPush, i))
	}
	// A slow request hands the reading over; its connection vanishes.
	require.NoError(t, clients[2].Send(ctxT(t), []byte(`{"pkg_id":11,"req_id":"5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3a"}`)))
	<-f.slow.started
	require.NoError(t, clients[2].Conn().NetConn().Close())
	for _, c := range clients[:2] {
		require.NoError(t, c.Close())
	}
	eventually(t, func() bool { return f.e.ActiveConnections() == 0 }, "connections freed")
	goleak.VerifyNone(t, baseline)
}

func TestLimitedMessagesNeverReachHandlers(t *testing.T) {
	var calls atomic.Int32
	down := false
	var mu sync.Mutex
	limiter := ratelimit.LimiterFunc(func(ctx context.Context, key string, rate ratelimit.Rate) (ratelimit.Result, error) {
		mu.Lock()
		defer mu.Unlock()
		assert.Equal(t, "ws:id-ada", key)
		if down {
			return ratelimit.Result{}, ratelimit.Unavailable(errors.New("redis down"), 2*time.Second)
		}
		return ratelimit.Result{Allowed: calls.Load() < 2, RetryAfter: 1500 * time.Millisecond}, nil
	})
	f := newFixture(t, ws.Config{Authenticator: fakeAuth, Limiter: limiter})
	f.r.Register(60, router.HandlerFunc[pkg](func(context.Context, *router.Request[pkg]) router.Response {
		calls.Add(1)
		return router.Response{}
	}), router.Authenticated())
	c := f.dial("user.ada")
	for i, want := range []router.StatusCode{router.StatusOK, router.StatusOK, router.StatusRateLimited, router.StatusRateLimited} {
		m, err := c.Call(ctxT(t), 60, nil)
		require.NoError(t, err)
		require.Equal(t, want, m.StatusCode(), "message %d", i)
		if want == router.StatusRateLimited {
			assert.Equal(t, `{"code":"rate_limit_exceeded","msg":"Message rate limit exceeded","details":null,"retry_after_ms":1500}`, string(m.Data))
		}
	}
	mu.Lock()
	down = true
	mu.Unlock()
	m, err := c.Call(ctxT(t), 60, nil)
	require.NoError(t, err)
	assert.Equal(t, router.StatusError, m.StatusCode())
	assert.Equal(t, `{"code":"service_unavailable","msg":"rate limiter unavailable","details":null,"retry_after_ms":2000}`, string(m.Data),
		"the backend's error stays in the logs")
	assert.Equal(t, int32(2), calls.Load(), "refused messages never reach the handler")
}

func TestConnMessageRateRefusesWithoutTheLimiter(t *testing.T) {
	var limiterCalls atomic.Int32
	limiter := ratelimit.LimiterFunc(func(ctx context.Context, key string, rate ratelimit.Rate) (ratelimit.Result, error) {
		limiterCalls.Add(1)
		return ratelimit.Result{Allowed: true}, nil
	})
	f := newFixture(t, ws.Config{
		Authenticator:   fakeAuth,
		Limiter:         limiter,
		MessageRate:     ratelimit.PerMinute(100),
		ConnMessageRate: ratelimit.Rate{Limit: 2, Window: time.Minute},
	})
	f.r.Register(61, router.HandlerFunc[pkg](func(context.Context, *router.Request[pkg]) router.Response {
		return router.Response{}
	}), router.Authenticated())
	c := f.dial("user.ada")
	for i, want := range []router.StatusCode{router.StatusOK, router.StatusOK, router.StatusRateLimited, router.StatusRateLimited} {
		m, err := c.Call(ctxT(t), 61, nil)
		require.NoError(t, err)
		require.Equal(t, want, m.StatusCode(), "message %d", i)
		if want == router.StatusRateLimited {
			e := m.Error()
			assert.Equal(t, "rate_limit_exceeded", e.Code)
			require.NotNil(t, e.RetryAfterMS)
			assert.InDelta(t, 30000, *e.RetryAfterMS, 1000, "one token refills in Window/Limit")
		}
	}
	assert.Equal(t, int32(2), limiterCalls.Load(), "refusals of the connection's bucket never reach the limiter")

	// Another connection of the same user has its own bucket.
	c2 := f.dial("user.ada")
	m, err := c2.Call(ctxT(t), 61, nil)
	require.NoError(t, err)
	assert.Equal(t, router.StatusOK, m.StatusCode())
}

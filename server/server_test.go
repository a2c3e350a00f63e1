package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pkgroute/pkgroute/audit"
	"github.com/pkgroute/pkgroute/auth/authtest"
	"github.com/pkgroute/pkgroute/pkgroutetest"
	"github.com/pkgroute/pkgroute/ratelimit"
	"github.com/pkgroute/pkgroute/rbac"
	"github.com/pkgroute/pkgroute/router"
	"github.com/pkgroute/pkgroute/router/ws"
	"github.com/pkgroute/pkgroute/server"
)

type pkgID int32

const echo pkgID = 1

func newRouter() *router.PackageRouter[pkgID] {
	r := router.New[pkgID](router.Config{})
	r.Register(echo, router.HandlerFunc[pkgID](func(_ context.Context, req *router.Request[pkgID]) router.Response {
		return router.Response{Data: req.Data}
	}), router.Roles("echo"), router.Name("ECHO"))
	return r
}

func newIssuer(t *testing.T) *authtest.Issuer {
	iss, err := authtest.New(authtest.Config{})
	require.NoError(t, err)
	return iss
}

func TestNewRefusesMissingParts(t *testing.T) {
	iss := newIssuer(t)
	lim := ratelimit.NewMemory(ratelimit.MemoryConfig{})
	al := audit.New(audit.Config{Sink: audit.SlogSink(nil)})
	t.Cleanup(func() { _ = al.Close(context.Background()) })
	for name, cfg := range map[string]server.Config{
		"no authenticator": {Limiter: lim, Audit: al},
		"no limiter":       {Authenticator: iss, Audit: al},
		"no audit":         {Authenticator: iss, Limiter: lim},
		"bad rate":         {Authenticator: iss, Limiter: lim, Audit: al, RateLimit: ratelimit.Rate{Limit: 1}},
		"bad origin":       {Authenticator: iss, Limiter: lim, Audit: al, WebSocket: wsOrigins("not a url")},
		"bad route":        {Authenticator: iss, Limiter: lim, Audit: al, Routes: []server.Route{{Pattern: "GET /x", Handler: nil}}},
		"clashing route":   {Authenticator: iss, Limiter: lim, Audit: al, Routes: []server.Route{{Pattern: "GET /health", Handler: http.NotFoundHandler()}}},
	} {
		_, err := server.New(newRouter(), cfg)
		assert.ErrorIs(t, err, server.ErrConfig, name)
	}

	var logs bytes.Buffer
	s, err := server.New(newRouter(), server.Config{
		Authenticator: iss,
		Logger:        slog.New(slog.NewTextHandler(&logs, nil)),
		Insecure:      server.Insecure{NoRateLimit: true, NoAudit: true},
	})
	require.NoError(t, err)
	require.NotNil(t, s)
	assert.Contains(t, logs.String(), "Insecure.NoRateLimit")
	assert.Contains(t, logs.String(), "Insecure.NoAudit")
}

func wsOrigins(o ...string) (c ws.Config) {
	c.AllowedOrigins = o
	return c
}

// entries collects audit entries.
type entries struct {
	mu  sync.Mutex
	all []audit.Entry
}

func (e *entries) Write(_ context.Context, batch []audit.Entry) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, batch...)
	return nil
}

func (e *entries) actions() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []string
	for _, x := range e.all {
		out = append(out, x.ActionType+" "+string(x.Outcome))
	}
	return out
}

func TestStackServesDrainsAndFlushes(t *testing.T) {
	sink := &entries{}
	al := audit.New(audit.Config{Sink: sink})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	iss := newIssuer(t)
	jobStopped := make(chan struct{})
	s, err := server.New(newRouter(), server.Config{
		Listener:      ln,
		Authenticator: iss,
		Limiter:       ratelimit.NewMemory(ratelimit.MemoryConfig{}),
		RateLimit:     ratelimit.Rate{Limit: 4, Window: time.Hour},
		Audit:         al,
		Routes: []server.Route{
			{Pattern: "GET /hello", Roles: []string{"greet"}, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				_, _ = io.WriteString(w, "hello")
			})},
			{Pattern: "GET /open", Public: true, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {})},
		},
		Jobs: []func(context.Context) error{func(ctx context.Context) error {
			<-ctx.Done()
			close(jobStopped)
			return ctx.Err()
		}},
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	base := "http://" + ln.Addr().String()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()

	get := func(path, token string) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, base+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := client.Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	// Probes are public and never limited.
	for range 6 {
		resp := get("/live", "")
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
	}
	assert.Equal(t, http.StatusOK, get("/health", "").StatusCode)
	assert.Equal(t, http.StatusOK, get("/metrics", "").StatusCode)

	// The app's route: its roles, the rate limit (4 per user).
	assert.Equal(t, http.StatusUnauthorized, get("/hello", "").StatusCode)
	assert.Equal(t, http.StatusUnauthorized, get("/hello", "garbage").StatusCode)
	reader := iss.Token("reader", "read")
	assert.Equal(t, http.StatusForbidden, get("/hello", reader).StatusCode)
	greeter := iss.Token("greeter", "greet")
	for range 4 {
		resp := get("/hello", greeter)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.NotEmpty(t, resp.Header.Get("RateLimit-Policy"))
	}
	assert.Equal(t, http.StatusTooManyRequests, get("/hello", greeter).StatusCode)

	// The bridge.
	req, _ := http.NewRequest(http.MethodPost, base+"/api/pkg/1", strings.NewReader(`{"data":{"a":1}}`))
	req.Header.Set("Authorization", "Bearer "+iss.Token("echoer", "echo"))
	resp, err := client.Do(req)
	require.NoError(t, err)
	var env struct {
		Status int             `json:"status_code"`
		Data   json.RawMessage `json:"data"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&env))
	resp.Body.Close()
	assert.Equal(t, 0, env.Status)
	assert.JSONEq(t, `{"a":1}`, string(env.Data))

	// The permission table has every route.
	table := &strings.Builder{}
	_, _ = rbac.NewTable(s.Permissions()...).WriteTo(table)
	for _, want := range []string{"GET /hello", "GET /open", "GET /web", "POST /api/pkg/{pkg_id}", "ECHO"} {
		assert.Contains(t, table.String(), want)
	}

	cancel()
	require.NoError(t, <-done)
	<-jobStopped
	// After Run: the audit log is flushed.
	acts := sink.actions()
	assert.Contains(t, acts, "HTTP:ECHO success")
	assert.Contains(t, acts, "HTTP:GET rate_limited")
	assert.Contains(t, acts, "HTTP:GET permission_denied")
	assert.ErrorIs(t, s.Run(context.Background()), server.ErrRunning)
}

// The loopback server of pkgroutetest is this package's Server: the
// WebSocket endpoint is at /web, behind the same authenticator.
func TestWebSocketThroughTheStack(t *testing.T) {
	srv := pkgroutetest.NewServer(t, newRouter(), server.Config{})
	c := srv.Dial("echo")
	reply := pkgroutetest.SendWS(t, c, echo, map[string]int{"n": 1}).RequireStatus(t, router.StatusOK)
	assert.JSONEq(t, `{"n":1}`, string(reply.Data))
	srv.Do(http.MethodGet, "/web", nil).RequireStatus(t, http.StatusBadRequest)
}

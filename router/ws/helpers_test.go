package ws_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/auth/authtest"
	"github.com/pkgroute/pkgroute/router"
	"github.com/pkgroute/pkgroute/router/ws"
	"github.com/pkgroute/pkgroute/router/ws/wstest"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

type pkg int32

const (
	pkgPing  pkg = 10 // echoes its data
	pkgSlow  pkg = 11 // waits for release or cancellation
	pkgAdmin pkg = 12 // needs role admin
	pkgPush  pkg = 100
)

// jwtAuthenticator verifies authtest tokens with the issuer's public keys
// (no leeway), the way a Keycloak verifier maps them.
func jwtAuthenticator(iss *authtest.Issuer) auth.Authenticator {
	return auth.AuthenticatorFunc(func(ctx context.Context, token string) (*auth.Principal, error) {
		claims := jwt.MapClaims{}
		_, err := jwt.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
			kid, _ := t.Header["kid"].(string)
			if k := iss.PublicKey(kid); k != nil {
				return k, nil
			}
			return nil, errors.New("unknown kid")
		}, jwt.WithValidMethods([]string{"RS256", "ES256"}), jwt.WithExpirationRequired())
		switch {
		case errors.Is(err, jwt.ErrTokenExpired):
			return nil, fmt.Errorf("%w: %v", auth.ErrTokenExpired, err)
		case err != nil:
			return nil, fmt.Errorf("%w: %v", auth.ErrInvalidCredentials, err)
		}
		p := &auth.Principal{}
		p.ID, _ = claims["sub"].(string)
		p.Username, _ = claims["preferred_username"].(string)
		if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
			p.ExpiresAt = exp.Time
		}
		if ra, ok := claims["resource_access"].(map[string]any); ok {
			if cl, ok := ra[iss.ClientID()].(map[string]any); ok {
				roles, _ := cl["roles"].([]any)
				for _, r := range roles {
					if s, ok := r.(string); ok {
						p.Roles = append(p.Roles, s)
					}
				}
			}
		}
		return p, nil
	})
}

// fakeAuth accepts tokens "user.<name>[.role~role][.ttl]" without any
// cryptography, for timing tests.
var fakeAuth = auth.AuthenticatorFunc(func(ctx context.Context, token string) (*auth.Principal, error) {
	parts := strings.Split(token, ".")
	if len(parts) < 2 || parts[0] != "user" {
		return nil, auth.ErrInvalidCredentials
	}
	p := &auth.Principal{ID: "id-" + parts[1], Username: parts[1]}
	if len(parts) > 2 && parts[2] != "" {
		p.Roles = strings.Split(parts[2], "~")
	}
	if len(parts) > 3 {
		d, err := time.ParseDuration(parts[3])
		if err != nil {
			return nil, auth.ErrTokenDecode
		}
		p.ExpiresAt = time.Now().Add(d)
	}
	return p, nil
})

type fixture struct {
	t    *testing.T
	e    *ws.Endpoint[pkg]
	r    *router.PackageRouter[pkg]
	srv  *httptest.Server
	url  string
	iss  *authtest.Issuer
	reg  *prometheus.Registry
	slow *slowHandler
}

// slowHandler blocks until released or cancelled and counts what it saw.
type slowHandler struct {
	mu        sync.Mutex
	running   int
	peak      int
	cancelled int
	started   chan struct{}
	release   chan struct{}
}

func (s *slowHandler) serve(ctx context.Context, req *router.Request[pkg]) router.Response {
	s.mu.Lock()
	s.running++
	s.peak = max(s.peak, s.running)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.running--
		s.mu.Unlock()
	}()
	select {
	case s.started <- struct{}{}:
	default:
	}
	select {
	case <-s.release:
		return router.Response{Data: req.Data}
	case <-ctx.Done():
		s.mu.Lock()
		s.cancelled++
		s.mu.Unlock()
		return router.Fail(ctx.Err())
	}
}

func (s *slowHandler) stats() (running, peak, cancelled int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.running, s.peak, s.cancelled
}

// newFixture starts an endpoint at /web on a loopback server. cfg's
// zero Authenticator means the tokens of a new authtest issuer (f.iss).
func newFixture(t *testing.T, cfg ws.Config) *fixture {
	t.Helper()
	f := &fixture{t: t, reg: prometheus.NewRegistry(),
		slow: &slowHandler{started: make(chan struct{}, 64), release: make(chan struct{})}}
	f.r = router.New[pkg](router.Config{})
	f.r.Register(pkgPing, router.HandlerFunc[pkg](func(ctx context.Context, req *router.Request[pkg]) router.Response {
		return router.Response{Data: req.Data}
	}), router.Authenticated())
	f.r.Register(pkgSlow, router.HandlerFunc[pkg](f.slow.serve), router.Authenticated(), router.Timeout(30*time.Second))
	f.r.Register(pkgAdmin, router.HandlerFunc[pkg](func(ctx context.Context, req *router.Request[pkg]) router.Response {
		return router.Response{Data: map[string]string{"conn": ws.ConnID(ctx), "transport": router.TransportFrom(ctx)}}
	}), router.Roles("admin"))
	if cfg.Authenticator == nil { // keys are slow to make: only when needed
		iss, err := authtest.New(authtest.Config{})
		require.NoError(t, err)
		f.iss = iss
		cfg.Authenticator = jwtAuthenticator(iss)
	}
	if cfg.Registerer == nil {
		cfg.Registerer = f.reg
	}
	if cfg.AuthTimeout == 0 {
		cfg.AuthTimeout = 2 * time.Second
	}
	if cfg.CloseGrace == 0 {
		cfg.CloseGrace = 300 * time.Millisecond
	}
	f.e = ws.New(f.r, cfg)
	mux := http.NewServeMux()
	mux.Handle("/web", f.e)
	f.srv = httptest.NewServer(mux)
	f.url = "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/web"
	t.Cleanup(func() {
		select {
		case <-f.slow.release:
		default:
			close(f.slow.release)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		require.NoError(t, f.e.Shutdown(ctx))
		f.srv.Close()
	})
	return f
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func (f *fixture) dial(token string, opts ...wstest.Option) *wstest.Client {
	f.t.Helper()
	c, err := wstest.Dial(ctxT(f.t), f.url, token, opts...)
	require.NoError(f.t, err)
	f.t.Cleanup(func() { _ = c.Close() })
	return c
}

// rawDial upgrades with gorilla directly, without a test-kit reader.
func (f *fixture) rawDial(h http.Header) *websocket.Conn {
	f.t.Helper()
	c, _, err := websocket.DefaultDialer.DialContext(ctxT(f.t), f.url, h)
	require.NoError(f.t, err)
	f.t.Cleanup(func() { _ = c.Close() })
	return c
}

// expectClose reads until the server's close frame and checks it.
func expectClose(t *testing.T, c *websocket.Conn, code int, reason string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue
		}
		var ce *websocket.CloseError
		require.ErrorAs(t, err, &ce, "want close %d, got %v", code, err)
		require.Equal(t, code, ce.Code, "close code (reason %q)", ce.Text)
		if reason != "" {
			require.Equal(t, reason, ce.Text)
		}
		return
	}
}

func waitClosed(t *testing.T, c *wstest.Client, code int, reason string) {
	t.Helper()
	ce, err := c.Wait(ctxT(t))
	require.NoError(t, err)
	require.Equal(t, code, ce.Code, "close code (reason %q)", ce.Text)
	if reason != "" {
		require.Equal(t, reason, ce.Text)
	}
}

func (f *fixture) counter(name string, labels ...string) float64 {
	f.t.Helper()
	mfs, err := f.reg.Gather()
	require.NoError(f.t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			if m.Counter != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

func eventually(t *testing.T, cond func() bool, msg string, args ...any) {
	t.Helper()
	require.Eventually(t, cond, 5*time.Second, 5*time.Millisecond, append([]any{msg}, args...)...)
}

func decode(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	return m
}

package ws_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pkgroute/pkgroute/router/ws"
	"github.com/pkgroute/pkgroute/router/ws/wstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestOrigin(t *testing.T) {
	tests := []struct {
		name     string
		allowed  []string
		origin   []string // Origin header values; nil = none
		sameHost bool     // use the server's own host as origin
		ok       bool
	}{
		{name: "no origin header", ok: true},
		{name: "same host by default", sameHost: true, ok: true},
		{name: "other host by default", origin: []string{"http://evil.example"}},
		{name: "allow-listed", allowed: []string{"https://app.example"}, origin: []string{"https://app.example"}, ok: true},
		{name: "allow-listed default port", allowed: []string{"https://app.example:443"}, origin: []string{"https://APP.example"}, ok: true},
		{name: "scheme differs", allowed: []string{"https://app.example"}, origin: []string{"http://app.example"}},
		{name: "port differs", allowed: []string{"https://app.example"}, origin: []string{"https://app.example:8443"}},
		{name: "list excludes same host", allowed: []string{"https://app.example"}, sameHost: true},
		{name: "wildcard", allowed: []string{"*"}, origin: []string{"http://evil.example"}, ok: true},
		{name: "null origin", origin: []string{"null"}},
		{name: "two origins", allowed: []string{"*"}, origin: []string{"https://a.example", "https://b.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, ws.Config{Authenticator: fakeAuth, AllowedOrigins: tt.allowed})
			h := http.Header{"Authorization": {"Bearer user.ada"}}
			if tt.sameHost {
				h.Set("Origin", f.srv.URL)
			}
			for _, o := range tt.origin {
				h.Add("Origin", o)
			}
			c, resp, err := websocket.DefaultDialer.DialContext(ctxT(t), f.url, h)
			if tt.ok {
				require.NoError(t, err)
				_ = c.Close()
				return
			}
			require.ErrorIs(t, err, websocket.ErrBadHandshake)
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			assert.Equal(t, http.StatusForbidden, resp.StatusCode)
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			assert.JSONEq(t, `{"error":{"code":"origin_not_allowed","msg":"Origin not allowed","details":null}}`, string(body))
			assert.Equal(t, 1.0, f.counter("ws_connections_total", "status", "rejected_origin"))
		})
	}
}

func TestNewPanicsOnBadConfig(t *testing.T) {
	assert.PanicsWithValue(t, "ws: Config.Authenticator is required", func() { ws.New(newFixture(t, ws.Config{}).r, ws.Config{}) })
	assert.Panics(t, func() {
		ws.New(newFixture(t, ws.Config{}).r, ws.Config{Authenticator: fakeAuth, AllowedOrigins: []string{"app.example"}})
	})
}

func TestHeaderAuth(t *testing.T) {
	f := newFixture(t, ws.Config{})
	expired := f.iss.Claims("ada")
	expired["exp"] = time.Now().Add(-time.Minute).Unix()
	expiredToken, err := f.iss.Sign(expired)
	require.NoError(t, err)

	tests := []struct {
		name      string
		header    string
		msg       string
		challenge string
	}{
		{"invalid signature", "Bearer " + f.iss.Token("ada")[:40] + "x.y.z", "Invalid token", ""},
		{"expired", "Bearer " + expiredToken, "Token has expired", ""},
		// No bearer token was sent: no error code (RFC 6750 section 3.1).
		{"other scheme", "Basic YWRhOnB3", "Authentication required", "Bearer"},
		{"empty bearer", "Bearer ", "Authentication required", "Bearer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := wstest.Dial(ctxT(t), f.url, "", wstest.WithHeader(http.Header{"Authorization": {tt.header}}))
			var he *wstest.HandshakeError
			require.ErrorAs(t, err, &he)
			assert.Equal(t, http.StatusUnauthorized, he.StatusCode)
			challenge := tt.challenge
			if challenge == "" {
				challenge = `Bearer error="invalid_token"`
			}
			assert.Equal(t, challenge, he.Header.Get("WWW-Authenticate"))
			assert.JSONEq(t, `{"error":{"code":"authentication_failed","msg":"`+tt.msg+`","details":null}}`, string(he.Body))
		})
	}
	assert.Equal(t, float64(len(tests)), f.counter("ws_connections_total", "status", "rejected_auth"))

	c := f.dial(f.iss.Token("ada", "admin"))
	m, err := c.Call(ctxT(t), int64(pkgAdmin), nil)
	require.NoError(t, err)
	require.Equal(t, 0, int(m.StatusCode()), string(m.Raw))
	got := decode(t, m.Data)
	assert.Equal(t, "ws", got["transport"])
	assert.NotEmpty(t, got["conn"])
	assert.Equal(t, 1.0, f.counter("ws_connections_total", "status", "accepted"))
	assert.Equal(t, 1, f.e.ActiveConnections())
	assert.Equal(t, 1.0, f.counter("ws_connections_active"))
}

func TestQueryToken(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Run("refused by default", func(t *testing.T) {
		f := newFixture(t, ws.Config{Logger: logger})
		tok := f.iss.Token("ada")
		_, err := wstest.Dial(ctxT(t), f.url+"?access_token="+tok, "")
		var he *wstest.HandshakeError
		require.ErrorAs(t, err, &he)
		assert.Equal(t, http.StatusUnauthorized, he.StatusCode)
		assert.Contains(t, string(he.Body), `"code":"authentication_failed"`)
		assert.NotContains(t, logs.String(), tok)

		// Refused also next to a valid header.
		_, err = wstest.Dial(ctxT(t), f.url+"?access_token="+tok, tok)
		require.ErrorAs(t, err, &he)
		assert.Equal(t, http.StatusUnauthorized, he.StatusCode)
		assert.JSONEq(t, `{"error":{"code":"authentication_failed","msg":"Query-string tokens are not accepted","details":null}}`, string(he.Body))
	})
	t.Run("opt-in", func(t *testing.T) {
		f := newFixture(t, ws.Config{Logger: logger, AllowQueryToken: true})
		tok := f.iss.Token("ada")
		c, err := wstest.Dial(ctxT(t), f.url+"?access_token="+tok, "")
		require.NoError(t, err)
		m, err := c.Call(ctxT(t), int64(pkgPing), map[string]int{"n": 1})
		require.NoError(t, err)
		assert.JSONEq(t, `{"n":1}`, string(m.Data))
		require.NoError(t, c.Close())

		bad := tok[:len(tok)-4] + "AAAA"
		_, err = wstest.Dial(ctxT(t), f.url+"?access_token="+bad, "")
		var he *wstest.HandshakeError
		require.ErrorAs(t, err, &he)
		assert.Equal(t, http.StatusUnauthorized, he.StatusCode)
		assert.NotContains(t, logs.String(), tok[len(tok)-20:])
		assert.NotContains(t, logs.String(), bad[len(bad)-20:])
		assert.Contains(t, logs.String(), "upgrade refused", "the refusal is logged, without the token")
	})
}

func TestConnectionCap(t *testing.T) {
	f := newFixture(t, ws.Config{MaxConnsPerUser: 2, ConnLimitRetryAfter: 3 * time.Second})
	tok := f.iss.Token("ada")
	c1 := f.dial(tok)
	f.dial(tok, wstest.FirstMessage())

	_, err := wstest.Dial(ctxT(t), f.url, tok)
	var he *wstest.HandshakeError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, http.StatusTooManyRequests, he.StatusCode)
	assert.Equal(t, "3", he.Header.Get("Retry-After"))
	assert.JSONEq(t, `{"error":{"code":"connection_limit_exceeded","msg":"Maximum concurrent connections exceeded","details":null}}`, string(he.Body))

	// First-message mode: upgraded, then closed with 1008.
	_, err = wstest.Dial(ctxT(t), f.url, tok, wstest.FirstMessage())
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, websocket.ClosePolicyViolation, ce.Code)
	assert.Equal(t, "maximum concurrent connections exceeded", ce.Text)
	assert.Equal(t, 2.0, f.counter("ws_connections_total", "status", "rejected_limit"))

	// Another user is not affected; a freed slot is usable again.
	f.dial(f.iss.Token("bob"))
	require.NoError(t, c1.Close())
	eventually(t, func() bool {
		c, err := wstest.Dial(ctxT(t), f.url, tok)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	}, "slot released")
}

func TestFirstMessageAuth(t *testing.T) {
	f := newFixture(t, ws.Config{})
	tok := f.iss.Token("ada")

	c := f.dial(tok, wstest.FirstMessage())
	require.NotNil(t, c.AuthOK())
	assert.Equal(t, "ada", c.AuthOK().User)
	assert.InDelta(t, time.Now().Add(5*time.Minute).Unix(), c.AuthOK().ExpiresAt, 5)
	m, err := c.Call(ctxT(t), int64(pkgPing), nil)
	require.NoError(t, err)
	assert.JSONEq(t, `{}`, string(m.Data))

	expired := f.iss.Claims("ada")
	expired["exp"] = time.Now().Add(-time.Minute).Unix()
	expiredToken, err := f.iss.Sign(expired)
	require.NoError(t, err)

	frames := map[string]string{
		"not json":        `hello`,
		"wrong type":      `{"type":"login","token":"Bearer ` + tok + `"}`,
		"extra member":    `{"type":"auth","token":"Bearer ` + tok + `","x":1}`,
		"token not str":   `{"type":"auth","token":1}`,
		"bare jwt":        `{"type":"auth","token":"` + tok + `"}`,
		"other scheme":    `{"type":"auth","token":"Basic ` + tok + `"}`,
		"invalid token":   `{"type":"auth","token":"Bearer ` + tok[:len(tok)-4] + `AAAA"}`,
		"expired token":   `{"type":"auth","token":"Bearer ` + expiredToken + `"}`,
		"a request first": `{"pkg_id":10,"req_id":"5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3a"}`,
		"duplicate type":  `{"type":"auth","type":"auth","token":"Bearer ` + tok + `"}`,
		"duplicate token": `{"type":"auth","token":"Bearer ` + tok + `","token":"Bearer ` + tok + `"}`,
		"case variant":    `{"Type":"auth","token":"Bearer ` + tok + `"}`,
		"trailing data":   `{"type":"auth","token":"Bearer ` + tok + `"}{}`,
		"missing token":   `{"type":"auth"}`,
		"array":           `["auth","Bearer ` + tok + `"]`,
	}
	for name, frame := range frames {
		t.Run(name, func(t *testing.T) {
			raw := f.rawDial(nil)
			require.NoError(t, raw.WriteMessage(websocket.TextMessage, []byte(frame)))
			expectClose(t, raw, ws.CloseUnauthorized, "unauthorized")
		})
	}
	t.Run("timeout", func(t *testing.T) {
		g := newFixture(t, ws.Config{AuthTimeout: 300 * time.Millisecond})
		raw := g.rawDial(nil)
		start := time.Now()
		expectClose(t, raw, ws.CloseAuthTimeout, "auth timeout")
		assert.GreaterOrEqual(t, time.Since(start), 250*time.Millisecond)
		assert.Equal(t, 1.0, g.counter("ws_connections_total", "status", "rejected_auth_timeout"))
	})
	t.Run("binary", func(t *testing.T) {
		raw := f.rawDial(nil)
		require.NoError(t, raw.WriteMessage(websocket.BinaryMessage, []byte(`{"type":"auth"}`)))
		expectClose(t, raw, websocket.CloseUnsupportedData, "")
	})
	eventually(t, func() bool {
		return f.counter("ws_connections_total", "status", "rejected_auth") == float64(len(frames)+1)
	},
		"rejected_auth counted")
}

func TestReauth(t *testing.T) {
	f := newFixture(t, ws.Config{})
	c := f.dial(f.iss.Token("ada"), wstest.FirstMessage())
	first := c.AuthOK().ExpiresAt

	claims := f.iss.Claims("ada")
	claims["exp"] = time.Now().Add(time.Hour).Unix()
	longer, err := f.iss.Sign(claims)
	require.NoError(t, err)
	ok, err := c.Auth(ctxT(t), longer)
	require.NoError(t, err)
	assert.Equal(t, "ada", ok.User)
	assert.Greater(t, ok.ExpiresAt, first)
	m, err := c.Call(ctxT(t), int64(pkgPing), nil)
	require.NoError(t, err)
	assert.Equal(t, 0, int(m.StatusCode()))

	t.Run("header connection may reauth", func(t *testing.T) {
		c := f.dial(f.iss.Token("ada"))
		_, err := c.Auth(ctxT(t), longer)
		require.NoError(t, err)
	})
	for name, tok := range map[string]string{
		"other user": f.iss.Token("bob"),
		"invalid":    longer[:len(longer)-4] + "AAAA",
	} {
		t.Run(name, func(t *testing.T) {
			c := f.dial(f.iss.Token("ada"))
			_, err := c.Auth(ctxT(t), tok)
			require.ErrorIs(t, err, wstest.ErrClosed)
			var ce *websocket.CloseError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, ws.CloseUnauthorized, ce.Code)
			assert.Equal(t, "unauthorized", ce.Text)
		})
	}
}

func TestTokenExpiry(t *testing.T) {
	f := newFixture(t, ws.Config{Authenticator: fakeAuth, ExpiryLeeway: -1})
	c := f.dial("user.ada..300ms")
	start := time.Now()
	waitClosed(t, c, ws.CloseTokenExpired, "token expired")
	assert.GreaterOrEqual(t, time.Since(start), 250*time.Millisecond)

	// A refresh before the expiry moves it.
	c = f.dial("user.ada..300ms")
	_, err := c.Auth(ctxT(t), "user.ada..1h")
	require.NoError(t, err)
	time.Sleep(500 * time.Millisecond)
	m, err := c.Call(ctxT(t), int64(pkgPing), nil)
	require.NoError(t, err)
	assert.Equal(t, 0, int(m.StatusCode()))

	// Leeway delays the close.
	g := newFixture(t, ws.Config{Authenticator: fakeAuth, ExpiryLeeway: 300 * time.Millisecond})
	c, err = wstest.Dial(ctxT(t), g.url, "user.ada..50ms")
	require.NoError(t, err)
	defer c.Close()
	start = time.Now()
	waitClosed(t, c, ws.CloseTokenExpired, "token expired")
	assert.GreaterOrEqual(t, time.Since(start), 250*time.Millisecond)
	assert.Equal(t, 1.0, g.counter("ws_closes_total", "code", "4003"))
}

func TestDrainingRefusesUpgrades(t *testing.T) {
	f := newFixture(t, ws.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	require.NoError(t, f.e.Shutdown(ctx))
	_, err := wstest.Dial(ctxT(t), f.url, f.iss.Token("ada"))
	var he *wstest.HandshakeError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, http.StatusServiceUnavailable, he.StatusCode)
	assert.True(t, strings.Contains(string(he.Body), "service_unavailable"))
	assert.False(t, errors.Is(err, context.Canceled))
}

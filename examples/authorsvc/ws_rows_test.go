package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pkgroute/pkgroute/router"
	"github.com/pkgroute/pkgroute/router/ws/wstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func waitClose(t *testing.T, c *wstest.Client) *websocket.CloseError {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ce, err := c.Wait(ctx)
	require.NoError(t, err)
	require.NotNil(t, ce)
	return ce
}

// TestWebSocketProtocolRows drives the WebSocket rows of docs/protocol.md
// against the running service.
func TestWebSocketProtocolRows(t *testing.T) {
	iss, env := keycloakEnv(t)
	env["AUTH_LEEWAY_SECONDS"] = "0"
	env["WS_MAX_MESSAGE_SIZE"] = "4096"
	env["WS_MESSAGE_RATE_LIMIT"] = "3"
	env["WS_ABUSE_CLOSE_AFTER"] = "2"
	env["WS_MAX_CONNECTIONS_PER_USER"] = "0"
	a := startApp(t, env)
	tok := iss.Token("reader", "get-authors")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	t.Run("origin not allowed", func(t *testing.T) {
		_, err := wstest.Dial(ctx, a.wsURL(), tok, wstest.WithHeader(http.Header{"Origin": {"https://evil.example"}}))
		var he *wstest.HandshakeError
		require.ErrorAs(t, err, &he)
		assert.Equal(t, 403, he.StatusCode)
		assert.Contains(t, string(he.Body), `"code":"origin_not_allowed"`)
	})
	t.Run("too big 1009", func(t *testing.T) {
		c := a.dial(t, tok)
		require.NoError(t, c.Send(ctx, []byte(`{"pkg_id":10,"req_id":"5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3a","data":{"x":"`+strings.Repeat("a", 5000)+`"}}`)))
		assert.Equal(t, websocket.CloseMessageTooBig, waitClose(t, c).Code)
	})
	t.Run("invalid UTF-8 1007", func(t *testing.T) {
		c := a.dial(t, tok)
		require.NoError(t, c.Send(ctx, []byte("{\"pkg_id\":10,\"data\":\"\xff\"}")))
		assert.Equal(t, websocket.CloseInvalidFramePayloadData, waitClose(t, c).Code)
	})
	t.Run("binary 1003", func(t *testing.T) {
		c := a.dial(t, tok)
		require.NoError(t, c.Conn().WriteMessage(websocket.BinaryMessage, []byte(`{}`)))
		assert.Equal(t, websocket.CloseUnsupportedData, waitClose(t, c).Code)
	})
	t.Run("invalid request keeps the connection", func(t *testing.T) {
		c := a.dial(t, iss.Token("bad-request-user", "get-authors"))
		require.NoError(t, c.Send(ctx, []byte(`nope`)))
		m, err := c.Next(ctx)
		require.NoError(t, err)
		assert.Equal(t, router.StatusInvalidData, m.StatusCode())
		assert.Equal(t, "invalid_request", m.Error().Code)
		m = call(t, c, 10, `{}`)
		assert.Equal(t, router.StatusOK, m.StatusCode())
	})
	t.Run("message rate limit then 1008", func(t *testing.T) {
		c := a.dial(t, iss.Token("chatty", "get-authors"))
		for range 3 {
			assert.Equal(t, router.StatusOK, call(t, c, 10, `{}`).StatusCode())
		}
		m := call(t, c, 10, `{}`)
		assert.Equal(t, router.StatusRateLimited, m.StatusCode())
		require.NotNil(t, m.Error().RetryAfterMS)
		assert.Positive(t, *m.Error().RetryAfterMS)
		m = call(t, c, 10, `{}`)
		assert.Equal(t, router.StatusRateLimited, m.StatusCode())
		ce := waitClose(t, c)
		assert.Equal(t, websocket.ClosePolicyViolation, ce.Code)
		assert.Equal(t, "message rate limit exceeded", ce.Text)
	})
	t.Run("re-auth and another user's token", func(t *testing.T) {
		c := a.dial(t, iss.Token("reauth", "get-authors"))
		ok, err := c.Auth(ctx, iss.Token("reauth", "get-authors"))
		require.NoError(t, err)
		assert.Equal(t, "reauth", ok.User)
		_, err = c.Auth(ctx, iss.Token("someone-else", "get-authors"))
		require.Error(t, err)
		assert.Equal(t, 4001, waitClose(t, c).Code)
	})
	t.Run("token expiry 4003", func(t *testing.T) {
		claims := iss.Claims("short-lived", "get-authors")
		claims["exp"] = time.Now().Add(1500 * time.Millisecond).Unix()
		short, err := iss.Sign(claims)
		require.NoError(t, err)
		c := a.dial(t, short)
		ce := waitClose(t, c)
		assert.Equal(t, 4003, ce.Code)
		assert.Equal(t, "token expired", ce.Text)
	})
	t.Run("first-message auth ok frame", func(t *testing.T) {
		c := a.dial(t, tok, wstest.FirstMessage())
		ok := c.AuthOK()
		require.NotNil(t, ok)
		assert.Equal(t, "reader", ok.User)
		assert.InDelta(t, time.Now().Add(5*time.Minute).Unix(), ok.ExpiresAt, 30)
	})
}

func TestUpgradeAnswerCarriesSecurityHeaders(t *testing.T) {
	a := startApp(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d := websocket.Dialer{}
	c, res, err := d.DialContext(ctx, a.wsURL(), http.Header{"Authorization": {"Bearer " + a.token(t, "reader")}})
	require.NoError(t, err)
	defer c.Close()
	assert.Equal(t, 101, res.StatusCode)
	assert.Equal(t, "DENY", res.Header.Get("X-Frame-Options"))
	assert.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
	assert.NotEmpty(t, res.Header.Get("X-Correlation-ID"))
}

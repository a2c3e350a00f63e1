package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/pkgroute/pkgroute/auth/authtest"
	"github.com/pkgroute/pkgroute/internal/testenv"
	"github.com/pkgroute/pkgroute/router"
	"github.com/pkgroute/pkgroute/router/ws/wstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// keycloakEnv starts a fake Keycloak realm and returns the variables that
// point the service at it.
func keycloakEnv(t *testing.T) (*authtest.Issuer, map[string]string) {
	t.Helper()
	iss := authtest.NewServer(t, authtest.Config{Realm: "shop", ClientID: "authorsvc", Users: devUsers})
	return iss, map[string]string{
		"KEYCLOAK_BASE_URL":  iss.BaseURL(),
		"KEYCLOAK_REALM":     "shop",
		"KEYCLOAK_CLIENT_ID": "authorsvc",
	}
}

// TestTwoInstances runs two instances sharing one PostgreSQL and one Redis:
// a create on A pushes AUTHOR_CREATED to a client on B, the per-user
// connection cap counts the connections of both, and the HTTP limit is
// shared.
func TestTwoInstances(t *testing.T) {
	iss, env := keycloakEnv(t)
	env["DATABASE_URL"] = testenv.PostgresURL(t)
	env["REDIS_URL"] = testenv.RedisURL(t)
	env["REDIS_KEY_PREFIX"] = testenv.RedisPrefix(t)
	env["WS_MAX_CONNECTIONS_PER_USER"] = "2"
	env["RATE_LIMIT_PER_MINUTE"] = "6"
	a := startApp(t, env)
	b := startApp(t, env)

	reader := iss.Token("reader", "get-authors")
	onB := b.dial(t, reader)
	// The readiness of B's subscription: a push from B itself arrives.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// Connection cap across instances: one more on A is the second, a third
	// on either is refused.
	onA := a.dial(t, reader)
	_, err := wstest.Dial(ctx, b.wsURL(), reader)
	var he *wstest.HandshakeError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, 429, he.StatusCode)
	require.NoError(t, onA.Close())
	require.Eventually(t, func() bool {
		c, err := wstest.Dial(ctx, b.wsURL(), reader)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	}, 5*time.Second, 50*time.Millisecond, "the slot freed on A is usable on B")

	// Push across instances: create on A, the client on B receives it.
	writer := iss.Token("writer", "get-authors", "create-author")
	var got *wstest.Message
	require.Eventually(t, func() bool {
		name := fmt.Sprintf("cross-%d", time.Now().UnixNano())
		code, rep, _ := a.pkg(t, writer, int(CreateAuthor), fmt.Sprintf(`{"name":%q}`, name))
		require.Equal(t, 200, code)
		require.Equal(t, 0, rep.StatusCode)
		pctx, pcancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer pcancel()
		m, err := onB.Next(pctx)
		if err != nil {
			return false // B's subscription may still be starting
		}
		got = m
		return true
	}, 5*time.Second, 10*time.Millisecond)
	assert.True(t, got.IsPush())
	assert.EqualValues(t, AuthorCreated, got.PkgID)

	// The HTTP limit is shared: a fresh user's budget of 6 spans both.
	admin := iss.Token("admin", "get-authors")
	for i := range 6 {
		inst := a
		if i%2 == 1 {
			inst = b
		}
		res, body := inst.do(t, "GET", "/authors", admin, "")
		require.Equal(t, 200, res.StatusCode, "request %d: %s", i, body)
	}
	res, _ := b.do(t, "GET", "/authors", admin, "")
	assert.Equal(t, 429, res.StatusCode)
	res, _ = a.do(t, "GET", "/authors", admin, "")
	assert.Equal(t, 429, res.StatusCode)
	_ = router.StatusOK
}

// TestLoginAgainstKeycloak logs in through /auth/login against a fake
// Keycloak realm: tokens pass through unchanged and verify; wrong
// credentials are 401; a failing identity provider is 503.
func TestLoginAgainstKeycloak(t *testing.T) {
	iss, env := keycloakEnv(t)
	a := startApp(t, env)
	res, body := a.do(t, "POST", "/auth/login", "", `{"username":"writer","password":"writer"}`)
	require.Equal(t, 200, res.StatusCode, "%s", body)
	var tokens struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		ExpiresIn    int    `json:"expires_in"`
		TokenType    string `json:"token_type"`
	}
	require.NoError(t, jsonUnmarshal(body, &tokens))
	assert.NotEmpty(t, tokens.AccessToken)
	assert.NotEmpty(t, tokens.RefreshToken)
	assert.Positive(t, tokens.ExpiresIn)
	res, _ = a.do(t, "POST", "/api/pkg/10", tokens.AccessToken, `{"data":{}}`)
	assert.Equal(t, 200, res.StatusCode)

	res, body = a.do(t, "POST", "/auth/refresh", "", fmt.Sprintf(`{"refresh_token":%q}`, tokens.RefreshToken))
	assert.Equal(t, 200, res.StatusCode, "%s", body)
	res, body = a.do(t, "POST", "/auth/refresh", "", `{"refresh_token":"garbage"}`)
	assert.Equal(t, 401, res.StatusCode)
	assert.Equal(t, "authentication_failed", httpError(t, body).Code)
	assert.Equal(t, "Invalid refresh token", httpError(t, body).Msg)
	assert.Equal(t, "Bearer", res.Header.Get("WWW-Authenticate"))

	res, body = a.do(t, "POST", "/auth/login", "", `{"username":"writer","password":"wrong"}`)
	assert.Equal(t, 401, res.StatusCode)
	assert.Equal(t, "authentication_failed", httpError(t, body).Code)
	assert.Equal(t, "Invalid username or password", httpError(t, body).Msg)
	assert.Equal(t, "Bearer", res.Header.Get("WWW-Authenticate"))

	iss.Fail(503)
	res, body = a.do(t, "POST", "/auth/login", "", `{"username":"writer","password":"writer"}`)
	assert.Equal(t, 503, res.StatusCode)
	assert.Equal(t, "service_unavailable", httpError(t, body).Code)
	assert.Equal(t, "identity provider unavailable", httpError(t, body).Msg, "no addresses of the provider")
	assert.NotEmpty(t, res.Header.Get("Retry-After"))
	iss.Fail(0)
	assert.NotContains(t, a.stderr.String(), tokens.AccessToken)
	assert.NotContains(t, a.stderr.String(), tokens.RefreshToken)
}

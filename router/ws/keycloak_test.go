package ws_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pkgroute/pkgroute/auth/authtest"
	"github.com/pkgroute/pkgroute/auth/keycloak"
	"github.com/pkgroute/pkgroute/router"
	"github.com/pkgroute/pkgroute/router/ws"
	"github.com/pkgroute/pkgroute/router/ws/wstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestKeycloakVerifier runs the handshakes with the Keycloak verifier
// against the test issuer's JWKS endpoint.
func TestKeycloakVerifier(t *testing.T) {
	iss := authtest.NewServer(t, authtest.Config{})
	v, err := keycloak.NewVerifier(context.Background(), keycloak.Config{
		BaseURL: iss.BaseURL(), Realm: iss.Realm(), ClientID: iss.ClientID(), Leeway: -1,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = v.Close() })
	f := newFixture(t, ws.Config{Authenticator: v, ExpiryLeeway: -1})

	h := f.dial(iss.Token("ada", "admin"))
	m, err := h.Call(ctxT(t), int64(pkgAdmin), nil)
	require.NoError(t, err)
	assert.Equal(t, router.StatusOK, m.StatusCode())

	fm := f.dial(iss.Token("ada"), wstest.FirstMessage())
	assert.Equal(t, "ada", fm.AuthOK().User)

	short := iss.Claims("bob")
	short["exp"] = time.Now().Add(1500 * time.Millisecond).Unix()
	tok, err := iss.Sign(short)
	require.NoError(t, err)
	c := f.dial(tok, wstest.FirstMessage())
	waitClosed(t, c, ws.CloseTokenExpired, "token expired")

	other := authtest.NewServer(t, authtest.Config{}) // same realm name, other keys
	_, err = wstest.Dial(ctxT(t), f.url, other.Token("eve"))
	var he *wstest.HandshakeError
	require.ErrorAs(t, err, &he)
	assert.Equal(t, http.StatusUnauthorized, he.StatusCode)
	_, err = wstest.Dial(ctxT(t), f.url, other.Token("eve"), wstest.FirstMessage())
	var ce *websocket.CloseError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, ws.CloseUnauthorized, ce.Code)
}

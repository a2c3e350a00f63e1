package keycloak_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/gorilla/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/auth/authtest"
	"github.com/pkgroute/pkgroute/auth/keycloak"
	"github.com/pkgroute/pkgroute/router"
	"github.com/pkgroute/pkgroute/router/ws"
)

func seg(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// TestAttackTokens sends tokens an attacker could forge or replay through
// the HTTP middleware and the raw Authenticate path (used by the WebSocket
// first-message handshake). Every one must be refused with 401 without the
// handler running, and without the verifier fetching anything from a URL
// named in the token.
func TestAttackTokens(t *testing.T) {
	f := newFixture(t, keycloak.Config{})
	ctx := context.Background()
	iss := f.iss
	rsaKID := iss.KeyID()
	ecKID := iss.KeyIDs(authtest.ES256)[0]
	rsaPub := iss.PublicKey(rsaKID).(*rsa.PublicKey)
	der, err := x509.MarshalPKIXPublicKey(rsaPub)
	require.NoError(t, err)
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})

	// An attacker-controlled host that would serve the attacker's keys.
	var attackerHits atomic.Int64
	attacker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		attackerHits.Add(1)
	}))
	defer attacker.Close()
	evil, err := authtest.New(authtest.Config{BaseURL: iss.BaseURL(), Realm: "shop", ClientID: "authorsvc"})
	require.NoError(t, err)
	evilPub := evil.PublicKey(evil.KeyID()).(*rsa.PublicKey)
	evilJWK := map[string]any{"kty": "RSA", "kid": evil.KeyID(),
		"n": base64.RawURLEncoding.EncodeToString(evilPub.N.Bytes()), "e": "AQAB"}

	// A key published for encryption must not verify signatures.
	encKID, err := iss.AddKey(authtest.ES256)
	require.NoError(t, err)
	iss.SetKeyUse(encKID, "enc")
	f.clock.Advance(11 * time.Second)
	require.NoError(t, f.v.Refresh(ctx))

	good := func() jwt.MapClaims { return iss.Claims("mallory", "admin") }
	with := func(k string, v any) jwt.MapClaims {
		c := good()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	sign := func(c jwt.MapClaims, opts ...authtest.SignOption) string { return f.sign(t, c, opts...) }
	valid := sign(good())
	parts := strings.Split(valid, ".")
	hdr := parts[0]
	payload := seg(good())
	otherKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	otherSig, err := jwt.NewWithClaims(jwt.SigningMethodES256, good()).SignedString(otherKey)
	require.NoError(t, err)
	bigClaims := good()
	bigClaims["pad"] = strings.Repeat("a", auth.MaxTokenBytes)
	tampered := good()
	tampered["resource_access"] = map[string]any{"authorsvc": map[string]any{"roles": []string{"admin", "root"}}}

	attacks := []struct {
		name  string
		token string // sent as "Bearer <token>" unless header is set
		raw   string // the Authorization header as sent, when not Bearer+token
	}{
		{name: "alg none", token: sign(good(), authtest.WithAlg("none"), authtest.WithKeyID(rsaKID))},
		{name: "alg none without kid", token: sign(good(), authtest.WithAlg("none"))},
		{name: "alg NONE upper case", token: seg(map[string]any{"alg": "NONE", "kid": rsaKID}) + "." + payload + "."},
		{name: "alg none with a signature", token: seg(map[string]any{"alg": "none", "kid": rsaKID}) + "." + payload + "." + parts[2]},
		{name: "HS256 with the RSA public key PEM", token: sign(good(), authtest.WithHMACKey(pemBytes), authtest.WithKeyID(rsaKID))},
		{name: "HS256 with the RSA public key DER", token: sign(good(), authtest.WithHMACKey(der), authtest.WithKeyID(rsaKID))},
		{name: "HS256 with the modulus", token: sign(good(), authtest.WithHMACKey(rsaPub.N.Bytes()), authtest.WithKeyID(rsaKID))},
		{name: "PS256 with the realm key", token: sign(good(), authtest.WithAlg("PS256"))},
		{name: "RS512 with the realm key", token: sign(good(), authtest.WithAlg("RS512"))},
		{name: "unknown kid", token: sign(good(), authtest.WithKeyID("no-such-key"))},
		{name: "no kid", token: sign(good(), authtest.WithKeyID(""))},
		{name: "kid of the EC key on an RS256 token", token: sign(good(), authtest.WithKeyID(ecKID))},
		{name: "kid of the RSA key on an ES256 token", token: sign(good(), authtest.WithKey(ecKID), authtest.WithKeyID(rsaKID))},
		{name: "key published with use enc", token: sign(good(), authtest.WithKey(encKID))},
		{name: "jku to the attacker's key set", token: mustSign(t, evil, good(), authtest.WithHeader("jku", attacker.URL+"/jwks"))},
		{name: "jwk header with the attacker's key", token: mustSign(t, evil, good(), authtest.WithHeader("jwk", evilJWK))},
		{name: "x5u to the attacker", token: mustSign(t, evil, good(), authtest.WithHeader("x5u", attacker.URL+"/cert.pem"))},
		{name: "jku with the realm kid, signed by the attacker", token: mustSign(t, evil, good(), authtest.WithKeyID(rsaKID), authtest.WithHeader("jku", attacker.URL))},
		{name: "crit header", token: sign(good(), authtest.WithHeader("crit", []string{"exp"}))},
		{name: "expired", token: sign(with("exp", time.Now().Add(-time.Minute).Unix()))},
		{name: "nbf in the future", token: sign(with("nbf", time.Now().Add(time.Minute).Unix()))},
		{name: "iat in the future", token: sign(with("iat", time.Now().Add(time.Minute).Unix()))},
		{name: "missing exp", token: sign(with("exp", nil))},
		{name: "exp as a string", token: sign(with("exp", "99999999999"))},
		{name: "wrong iss", token: sign(with("iss", iss.BaseURL()+"/realms/other"))},
		{name: "iss with a trailing slash", token: sign(with("iss", iss.IssuerURL()+"/"))},
		{name: "missing iss", token: sign(with("iss", nil))},
		{name: "other client's azp with aud account", token: sign(with("azp", "frontend"))},
		{name: "no azp and aud account", token: sign(with("azp", nil))},
		{name: "refresh token", token: sign(with("typ", "Refresh"))},
		{name: "ID token", token: sign(with("typ", "ID"))},
		{name: "missing sub", token: sign(with("sub", nil))},
		{name: "tampered payload", token: hdr + "." + seg(tampered) + "." + parts[2]},
		{name: "signature of another key", token: hdr + "." + parts[1] + "." + strings.Split(otherSig, ".")[2]},
		{name: "empty signature", token: hdr + "." + parts[1] + "."},
		{name: "two segments", token: hdr + "." + parts[1]},
		{name: "four segments", token: valid + ".x"},
		{name: "header not base64", token: "!!!." + parts[1] + "." + parts[2]},
		{name: "header not JSON", token: base64.RawURLEncoding.EncodeToString([]byte("nope")) + "." + parts[1] + "." + parts[2]},
		{name: "payload not JSON", token: hdr + "." + base64.RawURLEncoding.EncodeToString([]byte("[1,2")) + "." + parts[2]},
		{name: "padded segments", token: hdr + "==." + parts[1] + "." + parts[2]},
		{name: "token over 8 KiB", token: sign(bigClaims)},
		{name: "Bearer then thousands of dots", token: strings.Repeat(".", 50000)},
		{name: "Bearer then dots under the cap", token: strings.Repeat(".", 8000)},
		{name: "bare JWT without the scheme", raw: valid},
		{name: "Basic scheme", raw: "Basic " + valid},
		{name: "two spaces after Bearer", raw: "Bearer  " + valid},
		{name: "token with a newline", raw: "Bearer " + hdr + "\n." + parts[1] + "." + parts[2]},
	}

	handler := 0
	h := auth.Middleware(auth.Config{Authenticator: f.v})(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		handler++
	}))
	accepted := 0
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			header := a.raw
			if header == "" {
				header = "Bearer " + a.token
			}
			r := httptest.NewRequest(http.MethodGet, "/api/authors", nil)
			r.Header.Set("Authorization", header)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != http.StatusUnauthorized {
				accepted++
			}
			assert.Equal(t, http.StatusUnauthorized, w.Code)
			challenge := `Bearer error="invalid_token"`
			if strings.HasPrefix(header, "Basic ") {
				challenge = "Bearer" // no bearer token was sent (RFC 6750 section 3.1)
			}
			assert.Equal(t, challenge, w.Header().Get("WWW-Authenticate"))
			assert.Contains(t, w.Body.String(), `"code":"authentication_failed"`)

			if a.token != "" { // the raw path of the WebSocket handshake
				p, err := f.v.Authenticate(ctx, a.token)
				assert.Nil(t, p)
				require.Error(t, err)
				assert.NotEqual(t, "error", auth.Reason(err))
			}
		})
	}

	// The same tokens over WebSocket: in the upgrade's header (401, no
	// upgrade) and in the first message (close 4001); none reaches a package.
	pkgs := router.New[int32](router.Config{})
	pings := 0
	pkgs.Register(10, router.HandlerFunc[int32](func(context.Context, *router.Request[int32]) router.Response {
		pings++
		return router.Response{Data: map[string]any{}}
	}), router.Authenticated())
	endpoint := ws.New(pkgs, ws.Config{Authenticator: f.v})
	srv := httptest.NewServer(endpoint)
	defer func() {
		srv.Close()
		require.NoError(t, endpoint.Shutdown(context.Background()))
	}()
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http")
	for _, a := range attacks {
		t.Run("ws/"+a.name, func(t *testing.T) {
			header := a.raw
			if header == "" {
				header = "Bearer " + a.token
			}
			d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
			if !strings.ContainsAny(header, "\r\n") {
				c, res, err := d.Dial(wsURL, http.Header{"Authorization": {header}})
				if c != nil {
					c.Close()
					accepted++
				}
				require.Error(t, err)
				require.NotNil(t, res)
				assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
			}
			c, _, err := d.Dial(wsURL, nil)
			require.NoError(t, err)
			defer c.Close()
			require.NoError(t, c.WriteJSON(map[string]string{"type": "auth", "token": header}))
			require.NoError(t, c.WriteJSON(map[string]any{"pkg_id": 10, "req_id": "5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3a"}))
			require.NoError(t, c.SetReadDeadline(time.Now().Add(5*time.Second)))
			_, msg, err := c.ReadMessage()
			var ce *websocket.CloseError
			if !errors.As(err, &ce) {
				accepted++
				t.Fatalf("got %q, %v; want close 4001", msg, err)
			}
			assert.Equal(t, 4001, ce.Code)
			assert.Equal(t, "unauthorized", ce.Text)
		})
	}
	assert.Zero(t, pings, "no attack reached a package over WebSocket")

	// The query string is not a token source.
	r := httptest.NewRequest(http.MethodGet, "/api/authors?access_token="+valid, nil)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	assert.Equal(t, http.StatusUnauthorized, w.Code)
	assert.Equal(t, "Bearer", w.Header().Get("WWW-Authenticate"))

	// Two Authorization headers, one of them valid.
	r = httptest.NewRequest(http.MethodGet, "/api/authors", nil)
	r.Header.Add("Authorization", "Bearer "+valid)
	r.Header.Add("Authorization", "Bearer "+sign(good(), authtest.WithAlg("none")))
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	assert.Equal(t, http.StatusUnauthorized, w.Code)

	assert.Zero(t, handler, "no attack reached the handler")
	assert.Zero(t, attackerHits.Load(), "no URL from a token header was fetched")
	n := len(attacks) + 2
	t.Logf("%d attack tokens, %d accepted", n, accepted)
	assert.Zero(t, accepted)

	// The same valid token does pass, so the refusals above are meaningful.
	r = httptest.NewRequest(http.MethodGet, "/api/authors", nil)
	r.Header.Set("Authorization", "Bearer "+valid)
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	assert.Equal(t, 1, handler)
}

func mustSign(t *testing.T, iss *authtest.Issuer, c jwt.MapClaims, opts ...authtest.SignOption) string {
	t.Helper()
	tok, err := iss.Sign(c, opts...)
	require.NoError(t, err)
	return tok
}

package authtest_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/pkgroute/pkgroute/auth/authtest"
)

func TestMain(m *testing.M) {
	code := m.Run()
	http.DefaultClient.CloseIdleConnections() // the tests use the default client
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

func getJSON(t *testing.T, u string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	var m map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
	return resp.StatusCode, m
}

func postForm(t *testing.T, u string, form url.Values) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(u, form)
	require.NoError(t, err)
	defer resp.Body.Close()
	var m map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
	return resp.StatusCode, m
}

func parse(t *testing.T, iss *authtest.Issuer, tok string) jwt.MapClaims {
	t.Helper()
	var c jwt.MapClaims
	_, err := jwt.ParseWithClaims(tok, &c, func(tk *jwt.Token) (any, error) {
		return iss.PublicKey(tk.Header["kid"].(string)), nil
	}, jwt.WithIssuer(iss.IssuerURL()), jwt.WithExpirationRequired())
	require.NoError(t, err)
	return c
}

func TestClaimsAndSign(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	iss, err := authtest.New(authtest.Config{
		BaseURL: "http://idp.example/", Realm: "r1", ClientID: "app",
		Now: func() time.Time { return now }, TokenTTL: time.Minute,
	})
	require.NoError(t, err)
	assert.Equal(t, "http://idp.example/realms/r1", iss.IssuerURL())
	assert.Equal(t, "http://idp.example/realms/r1/protocol/openid-connect/certs", iss.JWKSURL())

	c := iss.Claims("ada", "get-authors")
	assert.Equal(t, now.Add(time.Minute).Unix(), c["exp"])
	assert.Equal(t, "app", c["azp"])
	assert.Equal(t, "Bearer", c["typ"])
	assert.Equal(t, "ada", c["preferred_username"])
	assert.Equal(t, []string{"get-authors"}, c["resource_access"].(map[string]any)["app"].(map[string]any)["roles"])

	tok, err := iss.Sign(c)
	require.NoError(t, err)
	var h map[string]any
	seg, err := jwt.NewParser().DecodeSegment(strings.Split(tok, ".")[0])
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(seg, &h))
	assert.Equal(t, map[string]any{"alg": "RS256", "kid": iss.KeyID(), "typ": "JWT"}, h)

	ec := iss.KeyIDs(authtest.ES256)
	require.Len(t, ec, 1)
	assert.IsType(t, &ecdsa.PublicKey{}, iss.PublicKey(ec[0]))
	assert.IsType(t, &rsa.PublicKey{}, iss.PublicKey(iss.KeyID()))

	cases := []struct {
		name string
		opts []authtest.SignOption
		alg  string
		kid  any
	}{
		{"ec key", []authtest.SignOption{authtest.WithKey(ec[0])}, "ES256", ec[0]},
		{"none", []authtest.SignOption{authtest.WithAlg("none")}, "none", nil},
		{"hmac", []authtest.SignOption{authtest.WithHMACKey([]byte("k"))}, "HS256", nil},
		{"foreign kid", []authtest.SignOption{authtest.WithKeyID("nope")}, "RS256", "nope"},
		{"no kid", []authtest.SignOption{authtest.WithKeyID("")}, "RS256", nil},
		{"pss", []authtest.SignOption{authtest.WithAlg("PS256")}, "PS256", iss.KeyID()},
		{"jku", []authtest.SignOption{authtest.WithHeader("jku", "http://x")}, "RS256", iss.KeyID()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := iss.Sign(c, tc.opts...)
			require.NoError(t, err)
			tk, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
			require.NoError(t, err)
			assert.Equal(t, tc.alg, tk.Header["alg"])
			assert.Equal(t, tc.kid, tk.Header["kid"])
		})
	}
	_, err = iss.Sign(c, authtest.WithKey("missing"))
	require.Error(t, err)
}

func TestServerEndpoints(t *testing.T) {
	iss := authtest.NewServer(t, authtest.Config{Users: []authtest.User{
		{Username: "ada", Password: "pw", Roles: []string{"get-authors"}, RealmRoles: []string{"admin"}},
	}})

	status, doc := getJSON(t, iss.IssuerURL()+"/.well-known/openid-configuration")
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, iss.IssuerURL(), doc["issuer"])
	assert.Equal(t, iss.JWKSURL(), doc["jwks_uri"])
	assert.Equal(t, iss.TokenURL(), doc["token_endpoint"])

	status, jwks := getJSON(t, iss.JWKSURL())
	require.Equal(t, http.StatusOK, status)
	keys := jwks["keys"].([]any)
	require.Len(t, keys, 2)
	assert.Equal(t, "RSA", keys[0].(map[string]any)["kty"])
	assert.Equal(t, "EC", keys[1].(map[string]any)["kty"])
	assert.Equal(t, int64(1), iss.JWKSRequests())

	status, _ = getJSON(t, iss.BaseURL()+"/realms/other/protocol/openid-connect/certs")
	assert.Equal(t, http.StatusNotFound, status)

	form := url.Values{"grant_type": {"password"}, "client_id": {"pkgroute"}, "username": {"ada"}, "password": {"pw"}}
	status, tr := postForm(t, iss.TokenURL(), form)
	require.Equal(t, http.StatusOK, status, tr)
	assert.Equal(t, "Bearer", tr["token_type"])
	assert.EqualValues(t, 300, tr["expires_in"])
	claims := parse(t, iss, tr["access_token"].(string))
	assert.Equal(t, "ada", claims["preferred_username"])
	assert.Equal(t, []any{"admin"}, claims["realm_access"].(map[string]any)["roles"])

	status, tr2 := postForm(t, iss.TokenURL(), url.Values{"grant_type": {"refresh_token"}, "client_id": {"pkgroute"}, "refresh_token": {tr["refresh_token"].(string)}})
	require.Equal(t, http.StatusOK, status, tr2)
	assert.Equal(t, "ada", parse(t, iss, tr2["access_token"].(string))["preferred_username"])

	bad := []struct {
		name   string
		form   url.Values
		status int
		code   string
	}{
		{"wrong password", url.Values{"grant_type": {"password"}, "client_id": {"pkgroute"}, "username": {"ada"}, "password": {"x"}}, 401, "invalid_grant"},
		{"unknown user", url.Values{"grant_type": {"password"}, "client_id": {"pkgroute"}, "username": {"bob"}, "password": {"pw"}}, 401, "invalid_grant"},
		{"other client", url.Values{"grant_type": {"password"}, "client_id": {"x"}, "username": {"ada"}, "password": {"pw"}}, 401, "invalid_client"},
		{"access token as refresh", url.Values{"grant_type": {"refresh_token"}, "client_id": {"pkgroute"}, "refresh_token": {tr["access_token"].(string)}}, 400, "invalid_grant"},
		{"garbage refresh", url.Values{"grant_type": {"refresh_token"}, "client_id": {"pkgroute"}, "refresh_token": {"a.b.c"}}, 400, "invalid_grant"},
		{"grant type", url.Values{"grant_type": {"client_credentials"}, "client_id": {"pkgroute"}}, 400, "unsupported_grant_type"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			status, body := postForm(t, iss.TokenURL(), tc.form)
			assert.Equal(t, tc.status, status)
			assert.Equal(t, tc.code, body["error"])
		})
	}
	assert.Equal(t, int64(2+len(bad)), iss.TokenRequests())
}

func TestConfidentialClient(t *testing.T) {
	iss := authtest.NewServer(t, authtest.Config{ClientSecret: "s3", Users: []authtest.User{{Username: "ada", Password: "pw"}}})
	form := url.Values{"grant_type": {"password"}, "client_id": {"pkgroute"}, "username": {"ada"}, "password": {"pw"}}
	status, body := postForm(t, iss.TokenURL(), form)
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.Equal(t, "unauthorized_client", body["error"])
	form.Set("client_secret", "s3")
	status, _ = postForm(t, iss.TokenURL(), form)
	assert.Equal(t, http.StatusOK, status)
}

func TestFailHangRotate(t *testing.T) {
	iss := authtest.NewServer(t, authtest.Config{})
	iss.Fail(http.StatusBadGateway)
	status, _ := getJSON(t, iss.JWKSURL())
	assert.Equal(t, http.StatusBadGateway, status)
	iss.Fail(0)

	iss.Hang(true)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, iss.JWKSURL(), nil)
	require.NoError(t, err)
	_, err = http.DefaultClient.Do(req)
	require.ErrorIs(t, err, context.DeadlineExceeded)

	done := make(chan int)
	go func() {
		resp, err := http.Get(iss.JWKSURL())
		if err != nil {
			done <- 0
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	time.Sleep(20 * time.Millisecond)
	iss.Hang(false)
	assert.Equal(t, http.StatusOK, <-done)

	old := iss.KeyID()
	kid, err := iss.Rotate()
	require.NoError(t, err)
	assert.Equal(t, kid, iss.KeyID())
	assert.Contains(t, iss.KeyIDs(authtest.RS256), old)
	iss.RemoveKey(old)
	assert.Equal(t, []string{kid}, iss.KeyIDs(authtest.RS256))
	iss.RemoveKey(kid)
	assert.Empty(t, iss.KeyID())
	http.DefaultClient.CloseIdleConnections()
}

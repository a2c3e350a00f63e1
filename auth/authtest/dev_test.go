package authtest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/auth/authtest"
)

func TestIssuerAuthenticates(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	iss, err := authtest.New(authtest.Config{ClientID: "app", Now: func() time.Time { return now }})
	require.NoError(t, err)
	ctx := context.Background()

	p, err := iss.Authenticate(ctx, iss.Token("ada", "reader", "writer"))
	require.NoError(t, err)
	assert.Equal(t, "ada", p.Username)
	assert.NotEmpty(t, p.ID)
	assert.Equal(t, []string{"reader", "writer"}, p.Roles)
	assert.True(t, now.Add(5*time.Minute).Equal(p.ExpiresAt), p.ExpiresAt)
	assert.Equal(t, "app", p.Claims()["azp"])

	p, err = iss.Authenticate(ctx, iss.Token("bob"))
	require.NoError(t, err)
	assert.Empty(t, p.Roles)

	expired := iss.Claims("ada")
	expired["exp"] = now.Add(-time.Hour).Unix()
	expired["iat"] = now.Add(-2 * time.Hour).Unix()
	tok, err := iss.Sign(expired)
	require.NoError(t, err)
	_, err = iss.Authenticate(ctx, tok)
	assert.ErrorIs(t, err, auth.ErrTokenExpired)

	_, err = iss.Authenticate(ctx, "not.a.token")
	assert.ErrorIs(t, err, auth.ErrTokenDecode)

	other, err := authtest.New(authtest.Config{ClientID: "app"})
	require.NoError(t, err)
	_, err = iss.Authenticate(ctx, other.Token("ada"))
	assert.ErrorIs(t, err, auth.ErrInvalidCredentials, "another issuer's key")

	refresh := iss.Claims("ada")
	refresh["typ"] = "Refresh"
	tok, err = iss.Sign(refresh)
	require.NoError(t, err)
	_, err = iss.Authenticate(ctx, tok)
	assert.ErrorIs(t, err, auth.ErrInvalidCredentials, "a refresh token is no access token")

	tok, err = iss.Sign(iss.Claims("ada"), authtest.WithHMACKey([]byte("secret")))
	require.NoError(t, err)
	_, err = iss.Authenticate(ctx, tok)
	assert.ErrorIs(t, err, auth.ErrInvalidCredentials, "HS256")
}

func post(t *testing.T, url, body string) (*http.Response, map[string]any) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
	return resp, out
}

func TestLoginHandler(t *testing.T) {
	iss, err := authtest.New(authtest.Config{Users: []authtest.User{{Username: "ada", Password: "pw", Roles: []string{"reader"}}}})
	require.NoError(t, err)
	srv := httptest.NewServer(iss.LoginHandler())
	t.Cleanup(srv.Close)

	resp, tokens := post(t, srv.URL+"/auth/login", `{"username":"ada","password":"pw"}`)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
	assert.EqualValues(t, 300, tokens["expires_in"])
	p, err := iss.Authenticate(context.Background(), tokens["access_token"].(string))
	require.NoError(t, err)
	assert.Equal(t, []string{"reader"}, p.Roles)

	resp, again := post(t, srv.URL+"/auth/refresh", `{"refresh_token":"`+tokens["refresh_token"].(string)+`"}`)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	_, err = iss.Authenticate(context.Background(), again["access_token"].(string))
	require.NoError(t, err)

	for _, tc := range []struct {
		path, body string
		status     int
		code       string
	}{
		{"/auth/login", `{"username":"ada","password":"bad"}`, 401, "authentication_failed"},
		{"/auth/login", `{"username":"eve","password":"pw"}`, 401, "authentication_failed"},
		{"/auth/login", `{"username":"ada"}`, 400, "invalid_data"},
		{"/auth/login", `{"username":"ada","password":"pw","x":1}`, 400, "invalid_data"},
		{"/auth/login", `[]`, 400, "invalid_data"},
		{"/auth/refresh", `{"refresh_token":"` + tokens["access_token"].(string) + `"}`, 401, "authentication_failed"},
		{"/auth/refresh", `{}`, 400, "invalid_data"},
	} {
		resp, body := post(t, srv.URL+tc.path, tc.body)
		assert.Equal(t, tc.status, resp.StatusCode, tc.body)
		assert.Equal(t, tc.code, body["error"].(map[string]any)["code"], tc.body)
		if tc.status == 401 {
			assert.Equal(t, "Bearer", resp.Header.Get("WWW-Authenticate"))
		}
	}
}

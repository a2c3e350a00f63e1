package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDevLoginAndCatalogue(t *testing.T) {
	a := startApp(t, nil)
	res, body := a.do(t, "POST", "/auth/login", "", `{"username":"reader","password":"reader"}`)
	require.Equal(t, 200, res.StatusCode, "%s", body)
	var tokens map[string]any
	require.NoError(t, json.Unmarshal(body, &tokens))
	for _, k := range []string{"access_token", "refresh_token", "expires_in", "token_type"} {
		assert.Contains(t, tokens, k)
	}
	res, body = a.do(t, "POST", "/auth/login", "", `{"username":"reader","password":"nope"}`)
	assert.Equal(t, 401, res.StatusCode)
	assert.Equal(t, `{"error":{"code":"authentication_failed","msg":"Invalid username or password","details":null}}`+"\n", string(body))
	assert.Equal(t, "Bearer", res.Header.Get("WWW-Authenticate"))
	res, _ = a.do(t, "POST", "/auth/login", "", `not json`)
	assert.Equal(t, 400, res.StatusCode)

	catalogue := func(token string) map[int64]map[string]any {
		res, body := a.do(t, "GET", "/api/packages", token, "")
		require.Equal(t, 200, res.StatusCode, "%s", body)
		var c struct {
			Packages []map[string]any `json:"packages"`
		}
		require.NoError(t, json.Unmarshal(body, &c))
		out := map[int64]map[string]any{}
		for _, p := range c.Packages {
			out[int64(p["pkg_id"].(float64))] = p
		}
		return out
	}
	assert.Empty(t, catalogue(""), "no public packages")
	reader := catalogue(tokens["access_token"].(string))
	assert.ElementsMatch(t, []int64{1, 2, 10, 100}, keys(reader))
	assert.Equal(t, "GET_AUTHORS", reader[1]["name"])
	assert.Equal(t, "roles", reader[1]["access"])
	assert.Equal(t, true, reader[2]["paginated"])
	assert.Equal(t, "authenticated", reader[10]["access"])
	assert.Nil(t, reader[10]["schema"])
	assert.Equal(t, true, reader[100]["push"])
	assert.Len(t, catalogue(a.token(t, "admin")), 7)
}

func keys(m map[int64]map[string]any) []int64 {
	var out []int64
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestHTTPRefusals(t *testing.T) {
	a := startApp(t, map[string]string{"MAX_REQUEST_BODY_SIZE": "1024", "ALLOWED_HOSTS": "127.0.0.1,localhost"})
	tok := a.token(t, "writer")
	res, body := a.do(t, "POST", "/authors", tok, `{"name":"`+strings.Repeat("x", 2000)+`"}`)
	assert.Equal(t, 413, res.StatusCode)
	assert.Equal(t, "request_too_large", httpError(t, body).Code)
	assert.Equal(t, "DENY", res.Header.Get("X-Frame-Options"))

	req, err := http.NewRequest("GET", a.base+"/health", nil)
	require.NoError(t, err)
	req.Host = "evil.example"
	res, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, 400, res.StatusCode)

	res, body = a.do(t, "GET", "/no/such/route", tok, "")
	assert.Equal(t, 404, res.StatusCode)
	assert.Equal(t, "not_found", httpError(t, body).Code)
	res, _ = a.do(t, "GET", "/authors", "not-a-jwt", "")
	assert.Equal(t, 401, res.StatusCode)
	assert.Equal(t, `Bearer error="invalid_token"`, res.Header.Get("WWW-Authenticate"))
	res, _ = a.do(t, "GET", "/authors", "", "")
	assert.Equal(t, "Bearer", res.Header.Get("WWW-Authenticate"))

	// Requests that net/http refuses before any handler runs get the same
	// error body and security headers.
	for _, tt := range []struct{ req, code string }{
		{"GET /health HTTP/1.1\r\n\r\n", "invalid_host"},
		{"GET /health HTTP/1.1\r\nHost: a b\r\n\r\n", "invalid_host"},
		{"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + strings.Repeat("a", 80<<10) + "\r\n\r\n", "request_too_large"},
	} {
		c, err := net.Dial("tcp", strings.TrimPrefix(a.base, "http://"))
		require.NoError(t, err)
		_, err = io.WriteString(c, tt.req)
		require.NoError(t, err)
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err)
		body, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		c.Close()
		assert.Equal(t, tt.code, httpError(t, body).Code, "%q", tt.req[:20])
		assert.Equal(t, "application/json", res.Header.Get("Content-Type"))
		assert.Equal(t, "DENY", res.Header.Get("X-Frame-Options"))
		assert.NotEmpty(t, res.Header.Get("X-Correlation-ID"))
	}
}

func TestBadConfigurationExitsWith2(t *testing.T) {
	bin, err := buildBinary()
	require.NoError(t, err)
	cmd := exec.Command(bin)
	cmd.Env = []string{"RATE_LIMIT_PER_MINUTE=lots", "PATH=/usr/bin:/bin"}
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	require.True(t, errors.As(err, &ee), "%v: %s", err, out)
	assert.Equal(t, 2, ee.ExitCode())
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	assert.Len(t, lines, 1, "%s", out)
	assert.Contains(t, string(out), "RATE_LIMIT_PER_MINUTE")
	assert.NotContains(t, string(out), "goroutine")
}

func TestAuditDisabled(t *testing.T) {
	a := startApp(t, map[string]string{"AUDIT_LOG_ENABLED": "false"})
	admin := a.token(t, "admin")
	res, _ := a.do(t, "POST", "/api/pkg/10", admin, `{"data":{}}`)
	require.Equal(t, 200, res.StatusCode)
	res, body := a.do(t, "GET", "/audit-logs", admin, "")
	require.Equal(t, 200, res.StatusCode, "%s", body)
	assert.Contains(t, string(body), `"total":0`)
}

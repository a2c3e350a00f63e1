package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pkgroute/pkgroute/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.Cleanup(func(int) { removeBinary() }))
}

type app struct {
	base   string
	stdout *testenv.Buffer
	stderr *testenv.Buffer
}

// startApp runs the service on a free port with env on top of test
// defaults, and stops it at cleanup, checking that run returned nil.
func startApp(t *testing.T, env map[string]string) *app {
	t.Helper()
	addr := fmt.Sprintf("127.0.0.1:%d", testenv.FreePort(t))
	vars := map[string]string{"HTTP_ADDR": addr, "DATABASE_URL": "sqlite::memory:", "RATE_LIMIT_PER_MINUTE": "100000"}
	for k, v := range env {
		vars[k] = v
	}
	a := &app{base: "http://" + addr, stdout: &testenv.Buffer{}, stderr: &testenv.Buffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"authorsvc"}, func(k string) string { return vars[k] }, a.stdout, a.stderr)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err)
		case <-time.After(15 * time.Second):
			t.Error("run did not return after cancel")
		}
	})
	require.Eventually(t, func() bool {
		select {
		case err := <-done:
			done <- err
			return true
		default:
		}
		res, err := http.Get(a.base + "/health")
		if err != nil {
			return false
		}
		res.Body.Close()
		return true
	}, 10*time.Second, 20*time.Millisecond)
	return a
}

func (a *app) token(t *testing.T, user string) string {
	t.Helper()
	res, err := http.PostForm(a.base+"/realms/dev/protocol/openid-connect/token", url.Values{
		"grant_type": {"password"}, "client_id": {"authorsvc"}, "username": {user}, "password": {user},
	})
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, 200, res.StatusCode)
	var body struct {
		AccessToken string `json:"access_token"`
	}
	require.NoError(t, json.NewDecoder(res.Body).Decode(&body))
	require.NotEmpty(t, body.AccessToken)
	return body.AccessToken
}

func (a *app) do(t *testing.T, method, path, token, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, a.base+path, strings.NewReader(body))
	require.NoError(t, err)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return send(t, req)
}

// send sends req and reads the whole answer.
func send(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, b
}

func TestPingOverHTTPBridge(t *testing.T) {
	a := startApp(t, nil)
	tok := a.token(t, "reader")
	res, body := a.do(t, "POST", "/api/pkg/10", tok, `{"req_id":"5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3a","data":{"hello":"world"}}`)
	require.Equal(t, 200, res.StatusCode, "%s", body)
	assert.Equal(t, `{"pkg_id":10,"req_id":"5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3a","status_code":0,"meta":null,"data":{"hello":"world"}}`, string(body))
	assert.Equal(t, "DENY", res.Header.Get("X-Frame-Options"))

	res, body = a.do(t, "POST", "/api/pkg/10", "", `{"data":{}}`)
	assert.Equal(t, 401, res.StatusCode)
	assert.Equal(t, "Bearer", res.Header.Get("WWW-Authenticate"))
	assert.JSONEq(t, `{"error":{"code":"authentication_failed","msg":"Authentication required","details":null}}`, string(body))

	res, _ = a.do(t, "POST", "/api/pkg/10", tok+"x", `{"data":{}}`)
	assert.Equal(t, 401, res.StatusCode)
	assert.Equal(t, `Bearer error="invalid_token"`, res.Header.Get("WWW-Authenticate"))

	res, body = a.do(t, "POST", "/api/pkg/10", tok, `not json`)
	assert.Equal(t, 400, res.StatusCode)
	assert.Contains(t, string(body), `"code":"invalid_request"`)
	assert.NotContains(t, a.stderr.String(), tok, "tokens never reach the log")
}

func TestHealthAndMetrics(t *testing.T) {
	a := startApp(t, nil)
	res, body := a.do(t, "GET", "/health", "", "")
	require.Equal(t, 200, res.StatusCode)
	var h map[string]any
	require.NoError(t, json.Unmarshal(body, &h))
	assert.Equal(t, "healthy", h["status"])
	assert.Equal(t, "disabled", h["redis"])
	res, body = a.do(t, "GET", "/metrics", "", "")
	require.Equal(t, 200, res.StatusCode)
	assert.Contains(t, string(body), "http_requests_total")
}

func TestRoutesFlag(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"authorsvc", "-routes"}, func(string) string { return "" }, &out, io.Discard)
	require.NoError(t, err)
	assert.Contains(t, out.String(), "PING")
	assert.Contains(t, out.String(), "POST /api/pkg/{pkg_id}")
	assert.Contains(t, out.String(), "GET /audit-logs")
	assert.Contains(t, out.String(), "GET_PAGINATED_AUTHORS")
	assert.Regexp(t, `package +CREATE_AUTHOR \(3\) +roles +create-author`, out.String(), "the permission table lists the packages")
	assert.Regexp(t, `push +AUTHOR_CREATED \(100\) +roles +get-authors`, out.String())
	assert.Regexp(t, `100 +AUTHOR_CREATED +roles +get-authors +yes +push`, out.String(), "the push's schema is listed")
}

func TestBadConfiguration(t *testing.T) {
	for _, tc := range []struct{ name, value, want string }{
		{"HTTP_ADDR", "", ""},
		{"RATE_LIMIT_PER_MINUTE", "ten", "RATE_LIMIT_PER_MINUTE"},
		{"DATABASE_URL", "mysql://x", "DATABASE_URL"},
		{"REDIS_URL", "http://x", "REDIS_URL"},
		{"KEYCLOAK_BASE_URL", "https://sso.example.com", "KEYCLOAK_BASE_URL"},
		{"LOG_FORMAT", "xml", "LOG_FORMAT"},
		{"RATE_LIMIT_FAIL_MODE", "maybe", "RATE_LIMIT_FAIL_MODE"},
		{"ALLOWED_WS_ORIGINS", "app.example.com", "ALLOWED_WS_ORIGINS"},
		{"TRUSTED_PROXIES", "10.0.0.0/99", "TRUSTED_PROXIES"},
		{"HTTP_ADDR", "x", "HTTP_ADDR"},
		{"HTTP_ADDR", "127.0.0.1:abc", "HTTP_ADDR"},
		{"HTTP_ADDR", "127.0.0.1:99999", "HTTP_ADDR"},
		{"HTTP_ADDR", "bad host:80", "HTTP_ADDR"},
		{"REDIS_URL", "redis://127.0.0.1:6379/abc", "REDIS_URL"},
		{"KEYCLOAK_CLIENT_ID", "authorsvc", "invalid configuration: KEYCLOAK_BASE_URL: not set"},
	} {
		if tc.want == "" {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			dbFile := filepath.Join(t.TempDir(), "a.db")
			env := map[string]string{"DATABASE_URL": "sqlite:" + dbFile, tc.name: tc.value}
			err := run(context.Background(), []string{"authorsvc"}, func(k string) string { return env[k] }, io.Discard, io.Discard)
			require.Error(t, err)
			var cerr *configError
			require.ErrorAs(t, err, &cerr)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "\n")
			assert.NoFileExists(t, dbFile, "nothing starts half-configured")
		})
	}
}

// TestNothingStartsWithoutTheListener: an address that cannot be had
// stops start-up before the database is touched.
func TestNothingStartsWithoutTheListener(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	dbFile := filepath.Join(t.TempDir(), "a.db")
	env := map[string]string{"DATABASE_URL": "sqlite:" + dbFile, "HTTP_ADDR": taken.Addr().String()}
	err = run(context.Background(), []string{"authorsvc"}, func(k string) string { return env[k] }, io.Discard, io.Discard)
	require.ErrorContains(t, err, "listen on "+taken.Addr().String())
	assert.NoFileExists(t, dbFile)
}

func TestFlagsAndArguments(t *testing.T) {
	var stderr bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"authorsvc", "-h"}, func(string) string { return "" }, io.Discard, &stderr))
	assert.Contains(t, stderr.String(), "-routes", "usage")
	for _, v := range configVars() {
		assert.Contains(t, stderr.String(), v.name)
	}
	assert.Contains(t, stderr.String(), "AUDIT_JOURNAL_FSYNC          batch (one of batch, interval, never)")
	assert.Contains(t, stderr.String(), "HTTP_ADDR                    127.0.0.1:8000")
	assert.GreaterOrEqual(t, len(configVars()), 38)
	err := run(context.Background(), []string{"authorsvc", "extra"}, func(string) string { return "" }, io.Discard, io.Discard)
	var cerr *configError
	require.ErrorAs(t, err, &cerr)
	assert.Equal(t, `invalid configuration: arguments="extra": unexpected argument (configuration is read from the environment)`, err.Error())
	err = run(context.Background(), []string{"authorsvc", "-nope"}, func(string) string { return "" }, io.Discard, io.Discard)
	require.ErrorAs(t, err, &cerr)
}

func TestHTTPRateLimit(t *testing.T) {
	a := startApp(t, map[string]string{"RATE_LIMIT_PER_MINUTE": "5"})
	tok := a.token(t, "reader") // one request from this IP
	spendQuotaOf5(t, a, tok)
	res, body := a.do(t, "POST", "/api/pkg/10", tok, `{"data":{}}`)
	assert.Equal(t, 429, res.StatusCode)
	assert.NotEmpty(t, res.Header.Get("Retry-After"))
	assert.Equal(t, "DENY", res.Header.Get("X-Frame-Options"))
	assert.Equal(t, "rate_limit_exceeded", httpError(t, body).Code)
	// Another user has their own budget; health is not limited.
	res, _ = a.do(t, "POST", "/api/pkg/10", a.token(t, "writer"), `{"data":{}}`)
	assert.Equal(t, 200, res.StatusCode)
	res, _ = a.do(t, "GET", "/health", "", "")
	assert.Equal(t, 200, res.StatusCode)
	assert.Empty(t, res.Header.Get("X-RateLimit-Limit"))
}

// TestHTTPRateLimitBurst: RATE_LIMIT_BURST lets an idle caller send
// PER_MINUTE+BURST requests at once; the headers report that quota.
func TestHTTPRateLimitBurst(t *testing.T) {
	a := startApp(t, map[string]string{"RATE_LIMIT_PER_MINUTE": "3", "RATE_LIMIT_BURST": "2"})
	tok := a.token(t, "reader")
	for i, res := range spendQuotaOf5(t, a, tok) {
		// After one request the full quota is back when it leaves the
		// window; after more, when they leave the two minutes.
		wantReset := "120"
		if i == 0 {
			wantReset = "60"
		}
		assert.Equal(t, wantReset, res.Header.Get("X-RateLimit-Reset"), "request %d", i)
	}
	res, _ := a.do(t, "POST", "/api/pkg/10", tok, `{"data":{}}`)
	assert.Equal(t, 429, res.StatusCode)
	assert.Equal(t, "60", res.Header.Get("Retry-After"), "the burst leaves the window")
}

// spendQuotaOf5 makes the five PING calls a quota of 5 per minute admits,
// checks their countdown headers and returns their responses.
func spendQuotaOf5(t *testing.T, a *app, tok string) []*http.Response {
	t.Helper()
	var out []*http.Response
	for i, want := range []string{"4", "3", "2", "1", "0"} {
		res, body := a.do(t, "POST", "/api/pkg/10", tok, `{"data":{}}`)
		require.Equal(t, 200, res.StatusCode, "request %d: %s", i, body)
		assert.Equal(t, want, res.Header.Get("X-RateLimit-Remaining"))
		assert.Equal(t, "5", res.Header.Get("X-RateLimit-Limit"))
		assert.Equal(t, `"default";q=5;w=60`, res.Header.Get("RateLimit-Policy"))
		out = append(out, res)
	}
	return out
}

func freePort(t *testing.T) int { return testenv.FreePort(t) }

func httpGet(u string) (int, error) {
	res, err := http.Get(u)
	if err != nil {
		return 0, err
	}
	res.Body.Close()
	return res.StatusCode, nil
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// TestHTTPRateLimitCoversEveryAnswer: requests refused before the handler,
// for a bad token, a disallowed Host or an oversized body, are counted
// against the client address and carry the rate limit headers, so that
// guessing tokens is limited like any other request.
func TestHTTPRateLimitCoversEveryAnswer(t *testing.T) {
	a := startApp(t, map[string]string{"RATE_LIMIT_PER_MINUTE": "4", "ALLOWED_HOSTS": "127.0.0.1", "MAX_REQUEST_BODY_SIZE": "100"})
	post := func(host, token, body string) (*http.Response, wireError) {
		req, err := http.NewRequest("POST", a.base+"/api/pkg/10", strings.NewReader(body))
		require.NoError(t, err)
		if host != "" {
			req.Host = host
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, b := send(t, req)
		return res, httpError(t, b)
	}
	big := `{"data":{"x":"` + strings.Repeat("a", 200) + `"}}`
	for i, tt := range []struct {
		host, token, body string
		status            int
		code, remaining   string
	}{
		{"", "forged.token.here", `{}`, 401, "authentication_failed", "3"},
		{"evil.example", "", `{}`, 400, "invalid_host", "2"},
		{"", "", big, 413, "request_too_large", "1"},
		{"", "forged.token.here", `{}`, 401, "authentication_failed", "0"},
		{"", "forged.token.here", `{}`, 429, "rate_limit_exceeded", "0"},
	} {
		res, e := post(tt.host, tt.token, tt.body)
		assert.Equal(t, tt.status, res.StatusCode, "request %d", i)
		assert.Equal(t, tt.code, e.Code, "request %d", i)
		assert.Equal(t, tt.remaining, res.Header.Get("X-RateLimit-Remaining"), "request %d", i)
		assert.Equal(t, `"default";q=4;w=60`, res.Header.Get("RateLimit-Policy"), "request %d", i)
		if tt.status == 401 {
			assert.Equal(t, `Bearer error="invalid_token"`, res.Header.Get("WWW-Authenticate"))
		}
	}
}

func TestWelcomeNamesDevUsersOnlyForTheDevIssuer(t *testing.T) {
	var dev, kc bytes.Buffer
	printWelcome(&dev, &config{devIssuer: true}, "http://127.0.0.1:8000")
	printWelcome(&kc, &config{}, "http://127.0.0.1:8000")
	assert.Contains(t, dev.String(), `{"username":"writer","password":"writer"}`)
	assert.Contains(t, dev.String(), "ws://127.0.0.1:8000/web")
	assert.NotContains(t, kc.String(), "writer")
	assert.Contains(t, kc.String(), `{"username":"<user>","password":"<password>"}`)
}

func TestHTTPAddrForms(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:8000": true, ":8000": true, "localhost:0": true, "[::1]:8000": true,
		"[fe80::1%lo]:8000": true, "127.0.0.1:http": true,
		"127.0.0.1:99999": false, "127.0.0.1:-1": false, "x": false, "bad host:80": false, "127.0.0.1:no-such-service": false,
	} {
		_, err := loadConfig(func(k string) string {
			if k == "HTTP_ADDR" {
				return addr
			}
			return ""
		})
		if ok {
			assert.NoError(t, err, addr)
		} else {
			assert.ErrorContains(t, err, "HTTP_ADDR", addr)
		}
	}
}

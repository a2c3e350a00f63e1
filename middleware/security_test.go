package middleware_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pkgroute/pkgroute/middleware"
)

var wantSecurityHeaders = map[string]string{
	"X-Frame-Options":            "DENY",
	"X-Content-Type-Options":     "nosniff",
	"X-XSS-Protection":           "0",
	"Strict-Transport-Security":  "max-age=31536000; includeSubDomains",
	"Referrer-Policy":            "strict-origin-when-cross-origin",
	"Permissions-Policy":         "geolocation=(), microphone=(), camera=()",
	"Content-Security-Policy":    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
	"Cross-Origin-Opener-Policy": "same-origin",
}

func assertSecurityHeaders(t *testing.T, h http.Header) {
	t.Helper()
	for k, v := range wantSecurityHeaders {
		assert.Equal(t, []string{v}, h.Values(k), k)
	}
	assert.Empty(t, h.Values("Server"), "Server")
	assert.Empty(t, h.Values("X-Powered-By"), "X-Powered-By")
}

// TestSecurityHeadersEveryStatus sends one request per status class the
// stack can produce, over a real connection, and checks every header.
func TestSecurityHeadersEveryStatus(t *testing.T) {
	st := newStack(t)
	srv := httptest.NewServer(st.handler)
	defer srv.Close()

	tests := []struct {
		name   string
		method string
		path   string
		host   string
		header map[string]string
		body   string
		chunk  bool // send the body chunked
		status int
		code   string // error code, "" for success answers
	}{
		{name: "200", method: "GET", path: "/ok", status: 200},
		{name: "201", method: "POST", path: "/authors", body: `{"name":"Ada"}`, status: 201},
		{name: "204", method: "DELETE", path: "/authors/7", status: 204},
		{name: "400 invalid host", method: "GET", path: "/ok", host: "evil.example", status: 400, code: "invalid_host"},
		{name: "400 invalid data", method: "GET", path: "/invalid", status: 400, code: "invalid_data"},
		{name: "401 no token", method: "GET", path: "/private/me", status: 401, code: "authentication_failed"},
		{name: "401 bad token", method: "GET", path: "/ok", header: map[string]string{"Authorization": "Bearer bad"}, status: 401, code: "authentication_failed"},
		{name: "403", method: "GET", path: "/forbidden", status: 403, code: "permission_denied"},
		{name: "404 unknown route", method: "GET", path: "/nope", status: 404, code: "not_found"},
		{name: "405", method: "PUT", path: "/ok", status: 405, code: "method_not_allowed"},
		{name: "409", method: "GET", path: "/conflict", status: 409, code: "conflict"},
		{name: "413 content-length", method: "POST", path: "/upload", body: strings.Repeat("x", middleware.DefaultMaxBodyBytes+1), status: 413, code: "request_too_large"},
		{name: "413 chunked", method: "POST", path: "/upload", body: strings.Repeat("x", middleware.DefaultMaxBodyBytes+1), chunk: true, status: 413, code: "request_too_large"},
		{name: "429", method: "GET", path: "/ok", header: map[string]string{"X-Test-Limit": "1"}, status: 429, code: "rate_limit_exceeded"},
		{name: "500 panic", method: "GET", path: "/panic", status: 500, code: "internal_error"},
		{name: "500 internal", method: "GET", path: "/internal", status: 500, code: "internal_error"},
		{name: "503", method: "GET", path: "/unavailable", status: 503, code: "service_unavailable"},
		{name: "preflight", method: "OPTIONS", path: "/ok", header: map[string]string{"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"}, status: 204},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var reqBody io.Reader = strings.NewReader(tc.body)
			if tc.chunk {
				reqBody = onlyReader{reqBody}
			}
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, reqBody)
			require.NoError(t, err)
			if tc.host != "" {
				req.Host = tc.host
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := srv.Client().Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)

			require.Equal(t, tc.status, resp.StatusCode, string(body))
			assertSecurityHeaders(t, resp.Header)
			assert.Len(t, resp.Header.Get(middleware.HeaderCorrelationID), 36, "generated correlation id")
			if tc.code == "" {
				return
			}
			assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
			var eb struct {
				Error struct {
					Code    string          `json:"code"`
					Msg     string          `json:"msg"`
					Details json.RawMessage `json:"details"`
				} `json:"error"`
			}
			require.NoError(t, json.Unmarshal(body, &eb), string(body))
			assert.Equal(t, tc.code, eb.Error.Code)
			assert.NotEmpty(t, eb.Error.Msg)
		})
	}
}

func TestSecurityHeadersCustomCSPAndOverride(t *testing.T) {
	h := middleware.SecurityHeaders(middleware.SecurityHeadersConfig{ContentSecurityPolicy: "default-src 'none'"})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// An inner handler tries to weaken the headers.
			w.Header().Del("X-Frame-Options")
			w.Header().Set("Content-Security-Policy", "default-src *")
			w.Header().Set("Server", "x")
			w.WriteHeader(http.StatusTeapot)
		}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	assert.Equal(t, http.StatusTeapot, rec.Code)
	assert.Equal(t, "DENY", rec.Header().Get("X-Frame-Options"))
	assert.Equal(t, "default-src 'none'", rec.Header().Get("Content-Security-Policy"))
	assert.Empty(t, rec.Header().Values("Server"))
}

// A layer outside SecurityHeaders that answers on the same writer after
// the inner handler failed still sends the headers.
func TestSecurityHeadersOuterLayer(t *testing.T) {
	inner := middleware.SecurityHeaders(middleware.SecurityHeadersConfig{})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { panic("inner") }))
	outer := middleware.Recover(middleware.RecoverConfig{})(inner)
	rec := httptest.NewRecorder()
	outer.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	assert.Equal(t, http.StatusInternalServerError, rec.Code)
	assertSecurityHeaders(t, rec.Header())
}

package middleware_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pkgroute/pkgroute/middleware"
)

func serveStack(st *stack, method, target string, headers map[string]string, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	req.Host = "api.example.com"
	req.RemoteAddr = "127.0.0.1:40000"
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	st.handler.ServeHTTP(rec, req)
	return rec
}

func accessLines(t *testing.T, logs *syncBuffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range logs.lines(t) {
		if l["msg"] == "http request" {
			out = append(out, l)
		}
	}
	return out
}

func TestAccessLogFields(t *testing.T) {
	st := newStack(t)
	rec := serveStack(st, "GET", "/authors/7?fields=name", map[string]string{
		"Authorization":                "Bearer good",
		"X-Forwarded-For":              "198.51.100.4",
		middleware.HeaderCorrelationID: "trace-1",
	}, "")
	require.Equal(t, 200, rec.Code)

	lines := accessLines(t, st.logs)
	require.Len(t, lines, 1)
	l := lines[0]
	assert.Equal(t, "INFO", l["level"])
	assert.Equal(t, "GET", l["method"])
	assert.Equal(t, "/authors/{id}", l["route"])
	assert.Equal(t, "/authors/7", l["path"])
	assert.Equal(t, "fields=name", l["query"])
	assert.EqualValues(t, 200, l["status"])
	assert.EqualValues(t, rec.Body.Len(), l["bytes"])
	assert.Contains(t, l, "duration")
	assert.Equal(t, "ada", l["user"])
	assert.Equal(t, "198.51.100.4", l["client_ip"])
	assert.Equal(t, "trace-1", l["correlation_id"])
}

func TestAccessLogStatusesAndRoutes(t *testing.T) {
	st := newStack(t)
	serveStack(st, "GET", "/nope/123", nil, "")
	serveStack(st, "GET", "/panic", nil, "")
	serveStack(st, "GET", "/health", nil, "")
	serveStack(st, "GET", "/metrics", nil, "")
	serveStack(st, "POST", "/upload", nil, strings.Repeat("x", middleware.DefaultMaxBodyBytes+10))

	lines := accessLines(t, st.logs)
	require.Len(t, lines, 3, "health and metrics are not logged")
	assert.Equal(t, "unmatched", lines[0]["route"])
	assert.EqualValues(t, 404, lines[0]["status"])
	assert.Equal(t, "/panic", lines[1]["route"])
	assert.EqualValues(t, 500, lines[1]["status"])
	assert.Equal(t, "unmatched", lines[2]["route"], "refused before routing")
	assert.EqualValues(t, 413, lines[2]["status"])
	assert.NotContains(t, lines[0], "user")
}

func TestAccessLogSkipPaths(t *testing.T) {
	logs := &syncBuffer{}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
	all := middleware.AccessLog(middleware.AccessLogConfig{Logger: jsonLogger(logs), SkipPaths: []string{}})(ok)
	all.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/health", nil))
	some := middleware.AccessLog(middleware.AccessLogConfig{Logger: jsonLogger(logs), SkipPaths: []string{"/ping"}})(ok)
	some.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/ping", nil))
	some.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/metrics", nil))
	lines := accessLines(t, logs)
	require.Len(t, lines, 2)
	assert.Equal(t, "/health", lines[0]["path"])
	assert.Equal(t, "/metrics", lines[1]["path"])
}

func TestAccessLogRedactsQuery(t *testing.T) {
	tests := []struct{ query, want string }{
		{"token=abc", "token=REDACTED"},
		{"access_token=abc&page=2", "access_token=REDACTED&page=2"},
		{"Refresh_Token=abc", "Refresh_Token=REDACTED"},
		{"id_token=a&password=b&client_secret=c&api_key=d&apikey=e&jwt=f&sessionid=g", "id_token=REDACTED&password=REDACTED&client_secret=REDACTED&api_key=REDACTED&apikey=REDACTED&jwt=REDACTED&sessionid=REDACTED"},
		{"acc%65ss_token=abc", "acc%65ss_token=REDACTED"},
		{"sig=xyz", "sig=REDACTED"},
		{"%zz=abc&q=1", "REDACTED&q=1"},
		{"token", "token"},
		{"q=a%20b&token=&x", "q=a%20b&token=REDACTED&x"},
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			logs := &syncBuffer{}
			h := middleware.AccessLog(middleware.AccessLogConfig{Logger: jsonLogger(logs), RedactQuery: []string{"SIG"}})(
				http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/x?"+tc.query, nil))
			lines := accessLines(t, logs)
			require.Len(t, lines, 1)
			assert.Equal(t, tc.want, lines[0]["query"])
		})
	}
}

// An end-to-end run with tokens in headers, query strings and bodies, a
// panic, an internal error and refusals leaves no secret in the logs.
func TestLogsCarryNoSecrets(t *testing.T) {
	st := newStack(t)
	const (
		jwt      = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ1LTEifQ.c2lnbmF0dXJlLXNlY3JldA"
		password = "hunter2-Sup3rSecret"
	)
	secrets := []string{jwt, password, "Bearer good", "Bearer " + jwt}
	requests := []struct {
		method, target string
		headers        map[string]string
		body           string
	}{
		{"GET", "/ok", map[string]string{"Authorization": "Bearer good"}, ""},
		{"GET", "/ok", map[string]string{"Authorization": "Bearer " + jwt}, ""},
		{"GET", "/ok?token=" + jwt, nil, ""},
		{"GET", "/ok?access_token=" + jwt + "&page=1", nil, ""},
		{"GET", "/nope?password=" + password, nil, ""},
		{"POST", "/authors?x=1", map[string]string{"Authorization": "Bearer good"}, `{"password":"` + password + `"}`},
		{"GET", "/panic?refresh_token=" + jwt, map[string]string{"Authorization": "Bearer good"}, ""},
		{"GET", "/internal", map[string]string{"Authorization": "Bearer good", "Cookie": "session=" + jwt}, ""},
		{"GET", "/private/me", nil, ""},
		{"GET", "/ok", map[string]string{"X-Test-Limit": "1", "Authorization": "Bearer " + jwt}, ""},
		{"POST", "/upload?api_key=" + password, nil, strings.Repeat("x", middleware.DefaultMaxBodyBytes+1)},
	}
	for _, r := range requests {
		serveStack(st, r.method, r.target, r.headers, r.body)
	}
	out := st.logs.String()
	require.Len(t, accessLines(t, st.logs), len(requests))
	assert.Contains(t, out, "REDACTED", "the query values were seen and redacted")
	assert.Contains(t, out, `"msg":"panic"`)
	assert.Contains(t, out, `"msg":"internal error"`)
	for _, s := range secrets {
		assert.NotContains(t, out, s)
	}
	assert.NotContains(t, strings.ToLower(out), "authorization")
}

package middleware_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/internal/errkind"
	"github.com/pkgroute/pkgroute/middleware"
)

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines decodes the JSON log lines written so far.
func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(l), &m), l)
		out = append(out, m)
	}
	return out
}

func jsonLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// retryErr is a rate-limit style error with a retry hint.
type retryErr struct {
	kind  errkind.Kind
	after time.Duration
}

func (e retryErr) Error() string             { return "limited" }
func (e retryErr) ErrorKind() errkind.Kind   { return e.kind }
func (e retryErr) RetryAfter() time.Duration { return e.after }

// detailErr carries details.
type detailErr struct{ details any }

func (e detailErr) Error() string           { return "data does not match" }
func (e detailErr) ErrorKind() errkind.Kind { return errkind.InvalidData }
func (e detailErr) ErrorDetails() any       { return e.details }

var errConflict = errkind.New(errkind.Conflict, "author already exists")

// fakeAuth stands for the application's auth layer: a bearer token "good"
// authenticates user "ada"; other tokens are refused; no token is anonymous
// except under /private.
func fakeAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		switch {
		case h == "Bearer good":
			r = r.WithContext(auth.NewContext(r.Context(), &auth.Principal{ID: "u-1", Username: "ada"}))
		case h != "":
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			middleware.WriteError(w, r, auth.ErrInvalidCredentials)
			return
		case strings.HasPrefix(r.URL.Path, "/private"):
			w.Header().Set("WWW-Authenticate", "Bearer")
			middleware.WriteError(w, r, auth.ErrNoToken)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// fakeLimit stands for the rate limit layer: requests with X-Test-Limit are
// refused.
func fakeLimit(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Powered-By", "leaky-framework")
		if r.Header.Get("X-Test-Limit") != "" {
			middleware.WriteError(w, r, retryErr{kind: errkind.RateLimited, after: 1500 * time.Millisecond})
			return
		}
		next.ServeHTTP(w, r)
	})
}

type stack struct {
	handler http.Handler
	reg     *prometheus.Registry
	logs    *syncBuffer
}

// newStack builds the standard order around a mux with one route per
// status class.
func newStack(t testing.TB) *stack {
	t.Helper()
	logs := &syncBuffer{}
	logger := jsonLogger(logs)
	reg := prometheus.NewRegistry()
	metrics, err := middleware.NewMetrics(middleware.MetricsConfig{Registerer: reg})
	require.NoError(t, err)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /ok", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Server", "secret-server/1.0")
		_ = middleware.WriteJSON(w, http.StatusOK, map[string]string{"hello": "world"})
	})
	mux.HandleFunc("POST /authors", func(w http.ResponseWriter, r *http.Request) {
		var in map[string]any
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			middleware.WriteError(w, r, err)
			return
		}
		_ = middleware.WriteJSON(w, http.StatusCreated, in)
	})
	mux.HandleFunc("DELETE /authors/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /authors/{id}", func(w http.ResponseWriter, r *http.Request) {
		_ = middleware.WriteJSON(w, http.StatusOK, map[string]string{"id": r.PathValue("id")})
	})
	mux.HandleFunc("GET /private/me", func(w http.ResponseWriter, r *http.Request) {
		_ = middleware.WriteJSON(w, http.StatusOK, map[string]string{"user": auth.FromContext(r.Context()).Username})
	})
	mux.HandleFunc("GET /forbidden", func(w http.ResponseWriter, r *http.Request) {
		middleware.WriteError(w, r, errkind.New(errkind.Forbidden, "Missing required roles: a, b"))
	})
	mux.HandleFunc("GET /conflict", func(w http.ResponseWriter, r *http.Request) {
		middleware.WriteError(w, r, errConflict)
	})
	mux.HandleFunc("GET /unavailable", func(w http.ResponseWriter, r *http.Request) {
		middleware.WriteError(w, r, retryErr{kind: errkind.Unavailable, after: 30 * time.Second})
	})
	mux.HandleFunc("GET /invalid", func(w http.ResponseWriter, r *http.Request) {
		middleware.WriteError(w, r, detailErr{details: []map[string]string{{"path": "/name", "msg": "minLength"}}})
	})
	mux.HandleFunc("GET /panic", func(w http.ResponseWriter, r *http.Request) {
		panic("boom")
	})
	mux.HandleFunc("GET /internal", func(w http.ResponseWriter, r *http.Request) {
		middleware.WriteError(w, r, errors.New("dial tcp 10.0.0.5:5432: connection refused"))
	})
	mux.HandleFunc("POST /upload", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body) // the error is ignored on purpose
		_ = middleware.WriteJSON(w, http.StatusOK, map[string]int64{"read": n})
	})
	mux.Handle("GET /health", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = middleware.WriteJSON(w, http.StatusOK, map[string]string{"status": "healthy"})
	}))
	mux.Handle("GET /metrics", middleware.MetricsHandler(reg))

	h := middleware.Chain(
		middleware.SecurityHeaders(middleware.SecurityHeadersConfig{}),
		middleware.CorrelationID(middleware.CorrelationIDConfig{Logger: logger}),
		middleware.Recover(middleware.RecoverConfig{}),
		middleware.ClientIP(middleware.ClientIPConfig{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}),
		middleware.AccessLog(middleware.AccessLogConfig{}),
		metrics.Middleware,
		middleware.TrustedHosts(middleware.TrustedHostsConfig{Hosts: []string{"127.0.0.1", "localhost", "api.example.com"}}),
		middleware.CORS(middleware.CORSConfig{AllowedOrigins: []string{"https://app.example.com"}}),
		middleware.BodyLimit(middleware.BodyLimitConfig{}),
		fakeAuth,
		fakeLimit,
	)(middleware.Routes(mux))
	return &stack{handler: h, reg: reg, logs: logs}
}

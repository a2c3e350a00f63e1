package middleware_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/pkgroute/pkgroute/middleware"
)

// BenchmarkStack measures one matched request through the whole standard
// stack (JSON access log included).
func BenchmarkStack(b *testing.B) {
	st := newStack(b)
	req := httptest.NewRequest("GET", "/authors/7", nil)
	req.Host = "api.example.com"
	req.RemoteAddr = "127.0.0.1:40000"
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		st.handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatal(rec.Code)
		}
	}
}

// BenchmarkStackNoLog is the same stack minus the access log line, to
// separate the middleware cost from the log handler's.
func BenchmarkStackNoLog(b *testing.B) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /authors/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	m, err := middleware.NewMetrics(middleware.MetricsConfig{})
	if err != nil {
		b.Fatal(err)
	}
	h := middleware.Chain(
		middleware.SecurityHeaders(middleware.SecurityHeadersConfig{}),
		middleware.CorrelationID(middleware.CorrelationIDConfig{}),
		middleware.Recover(middleware.RecoverConfig{}),
		middleware.ClientIP(middleware.ClientIPConfig{}),
		m.Middleware,
		middleware.TrustedHosts(middleware.TrustedHostsConfig{Hosts: []string{"api.example.com"}}),
		middleware.BodyLimit(middleware.BodyLimitConfig{}),
	)(middleware.Routes(mux))
	req := httptest.NewRequest("GET", "/authors/7", nil)
	req.Host = "api.example.com"
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
}

func BenchmarkWriteError(b *testing.B) {
	req := httptest.NewRequest("GET", "/", nil)
	err := errors.Join(errConflict)
	b.ReportAllocs()
	for b.Loop() {
		middleware.WriteError(httptest.NewRecorder(), req, err)
	}
}

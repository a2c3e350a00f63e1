package middleware_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pkgroute/pkgroute/middleware"
)

// The standard stack around an application's ServeMux. The application's
// own layers (authentication, rate limiting, audit) go between BodyLimit
// and Routes.
func ExampleChain() {
	logger := slog.New(slog.DiscardHandler)
	reg := prometheus.NewRegistry()
	metrics, err := middleware.NewMetrics(middleware.MetricsConfig{Registerer: reg})
	if err != nil {
		panic(err)
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /authors/{id}", func(w http.ResponseWriter, r *http.Request) {
		_ = middleware.WriteJSON(w, http.StatusOK, map[string]string{"id": r.PathValue("id")})
	})
	mux.Handle("GET /metrics", middleware.MetricsHandler(reg))

	handler := middleware.Chain(
		middleware.SecurityHeaders(middleware.SecurityHeadersConfig{}),
		middleware.CorrelationID(middleware.CorrelationIDConfig{Logger: logger}),
		middleware.Recover(middleware.RecoverConfig{}),
		middleware.ClientIP(middleware.ClientIPConfig{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}),
		middleware.AccessLog(middleware.AccessLogConfig{}),
		metrics.Middleware,
		middleware.TrustedHosts(middleware.TrustedHostsConfig{Hosts: []string{"api.example.com"}}),
		middleware.CORS(middleware.CORSConfig{AllowedOrigins: []string{"https://app.example.com"}}),
		middleware.BodyLimit(middleware.BodyLimitConfig{}),
		// auth, rate limit and audit middlewares of the application go here
	)(middleware.Routes(mux))

	// In production: srv := middleware.NewServer(":8080", handler, middleware.ServerConfig{Logger: logger})
	for _, target := range []string{"/authors/7", "/nowhere"} {
		req := httptest.NewRequest("GET", target, nil)
		req.Host = "api.example.com"
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		body, _ := io.ReadAll(rec.Body)
		fmt.Print(rec.Code, " ", rec.Header().Get("X-Frame-Options"), " ", string(body))
	}
	// Output:
	// 200 DENY {"id":"7"}
	// 404 DENY {"error":{"code":"not_found","msg":"not found","details":null}}
}

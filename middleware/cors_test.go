package middleware_test

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/pkgroute/pkgroute/middleware"
)

func TestCORS(t *testing.T) {
	const app = "https://app.example.com"
	base := middleware.CORSConfig{AllowedOrigins: []string{app}}
	tests := []struct {
		name    string
		cfg     middleware.CORSConfig
		method  string
		headers map[string]string
		status  int
		reached bool
		want    map[string]string // "" means absent
	}{
		{
			name: "zero config does nothing", cfg: middleware.CORSConfig{}, method: "OPTIONS",
			headers: map[string]string{"Origin": app, "Access-Control-Request-Method": "GET"},
			status:  200, reached: true,
			want: map[string]string{"Access-Control-Allow-Origin": "", "Vary": ""},
		},
		{
			name: "no origin passes", cfg: base, method: "GET", status: 200, reached: true,
			want: map[string]string{"Access-Control-Allow-Origin": ""},
		},
		{
			name: "allowed simple request", cfg: base, method: "GET",
			headers: map[string]string{"Origin": app}, status: 200, reached: true,
			want: map[string]string{
				"Access-Control-Allow-Origin":      app,
				"Access-Control-Allow-Credentials": "",
				"Access-Control-Expose-Headers":    "X-Correlation-ID, Retry-After, RateLimit, RateLimit-Policy, X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset",
				"Vary":                             "Origin",
			},
		},
		{
			name: "origin case-insensitive", cfg: base, method: "GET",
			headers: map[string]string{"Origin": "HTTPS://APP.example.com"}, status: 200, reached: true,
			want: map[string]string{"Access-Control-Allow-Origin": "HTTPS://APP.example.com"},
		},
		{
			name: "other origin gets nothing", cfg: base, method: "GET",
			headers: map[string]string{"Origin": "https://evil.example"}, status: 200, reached: true,
			want: map[string]string{"Access-Control-Allow-Origin": "", "Vary": "Origin"},
		},
		{
			name: "preflight allowed", cfg: base, method: "OPTIONS",
			headers: map[string]string{"Origin": app, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type, authorization"},
			status:  204,
			want: map[string]string{
				"Access-Control-Allow-Origin":  app,
				"Access-Control-Allow-Methods": "GET, HEAD, POST, PUT, PATCH, DELETE",
				"Access-Control-Allow-Headers": "Authorization, Content-Type, X-Correlation-ID",
				"Access-Control-Max-Age":       "600",
			},
		},
		{
			name: "preflight bad method", cfg: base, method: "OPTIONS",
			headers: map[string]string{"Origin": app, "Access-Control-Request-Method": "TRACE"},
			status:  204,
			want:    map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Allow-Methods": ""},
		},
		{
			name: "preflight bad header", cfg: base, method: "OPTIONS",
			headers: map[string]string{"Origin": app, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "X-Secret"},
			status:  204,
			want:    map[string]string{"Access-Control-Allow-Origin": ""},
		},
		{
			name: "preflight other origin", cfg: base, method: "OPTIONS",
			headers: map[string]string{"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
			status:  204,
			want:    map[string]string{"Access-Control-Allow-Origin": ""},
		},
		{
			name: "plain OPTIONS passes", cfg: base, method: "OPTIONS",
			headers: map[string]string{"Origin": app}, status: 200, reached: true,
			want: map[string]string{"Access-Control-Allow-Origin": app},
		},
		{
			name: "star without credentials", cfg: middleware.CORSConfig{AllowedOrigins: []string{"*"}}, method: "GET",
			headers: map[string]string{"Origin": "https://any.example"}, status: 200, reached: true,
			want: map[string]string{"Access-Control-Allow-Origin": "*"},
		},
		{
			name: "star with credentials echoes", cfg: middleware.CORSConfig{AllowedOrigins: []string{"*"}, AllowCredentials: true}, method: "GET",
			headers: map[string]string{"Origin": "https://any.example"}, status: 200, reached: true,
			want: map[string]string{"Access-Control-Allow-Origin": "https://any.example", "Access-Control-Allow-Credentials": "true"},
		},
		{
			name: "custom lists and max age", method: "OPTIONS",
			cfg: middleware.CORSConfig{AllowedOrigins: []string{app}, AllowedMethods: []string{"GET"}, AllowedHeaders: []string{"X-Api"},
				MaxAge: 90 * time.Second, AllowCredentials: true},
			headers: map[string]string{"Origin": app, "Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "x-api"},
			status:  204,
			want: map[string]string{
				"Access-Control-Allow-Methods": "GET", "Access-Control-Allow-Headers": "X-Api",
				"Access-Control-Max-Age": "90", "Access-Control-Allow-Credentials": "true",
			},
		},
		{
			name: "negative max age omitted", method: "OPTIONS",
			cfg:     middleware.CORSConfig{AllowedOrigins: []string{app}, MaxAge: -1},
			headers: map[string]string{"Origin": app, "Access-Control-Request-Method": "GET"},
			status:  204,
			want:    map[string]string{"Access-Control-Max-Age": "", "Access-Control-Allow-Origin": app},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reached := false
			h := middleware.CORS(tc.cfg)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { reached = true }))
			req := httptest.NewRequest(tc.method, "/x", nil)
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			assert.Equal(t, tc.status, rec.Code)
			assert.Equal(t, tc.reached, reached)
			for k, v := range tc.want {
				assert.Equal(t, v, rec.Header().Get(k), k)
			}
		})
	}
}

package middleware

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CORSConfig configures [CORS]. The zero value allows no origin: the
// middleware does nothing and browsers keep their same-origin rule.
type CORSConfig struct {
	// AllowedOrigins are full origins ("https://app.example.com",
	// "http://localhost:5173"), compared ignoring case; "*" allows every
	// origin.
	AllowedOrigins []string
	// AllowedMethods answered to preflights; nil means GET, HEAD, POST, PUT,
	// PATCH, DELETE.
	AllowedMethods []string
	// AllowedHeaders a request may send; nil means Authorization,
	// Content-Type and X-Correlation-ID. Compared ignoring case.
	AllowedHeaders []string
	// ExposedHeaders a browser script may read; nil means X-Correlation-ID,
	// Retry-After and the rate limit headers.
	ExposedHeaders []string
	// AllowCredentials sends Access-Control-Allow-Credentials: true; the
	// allowed origin is then always echoed, never "*".
	AllowCredentials bool
	// MaxAge is how long a browser may cache a preflight answer; zero means
	// 10 minutes, negative sends no Access-Control-Max-Age.
	MaxAge time.Duration
}

// CORS answers cross-origin requests from the allowed origins: preflights
// (OPTIONS with Origin and Access-Control-Request-Method) are answered 204
// here, with the allow headers when the origin, method and headers are
// allowed and without them otherwise; other requests from an allowed origin
// get Access-Control-Allow-Origin and the exposed headers. Requests without
// Origin pass untouched. Place it before authentication: preflights carry no
// credentials.
func CORS(cfg CORSConfig) Middleware {
	anyOrigin := false
	origins := make([]string, 0, len(cfg.AllowedOrigins))
	for _, o := range cfg.AllowedOrigins {
		if o == "*" {
			anyOrigin = true
			continue
		}
		origins = append(origins, strings.ToLower(strings.TrimSuffix(o, "/")))
	}
	methods := cfg.AllowedMethods
	if methods == nil {
		methods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}
	}
	headers := cfg.AllowedHeaders
	if headers == nil {
		headers = []string{"Authorization", "Content-Type", HeaderCorrelationID}
	}
	lowerHeaders := make([]string, len(headers))
	for i, h := range headers {
		lowerHeaders[i] = strings.ToLower(h)
	}
	exposed := cfg.ExposedHeaders
	if exposed == nil {
		exposed = []string{HeaderCorrelationID, "Retry-After", "RateLimit", "RateLimit-Policy",
			"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"}
	}
	allowMethods := strings.Join(methods, ", ")
	allowHeaders := strings.Join(headers, ", ")
	exposeHeaders := strings.Join(exposed, ", ")
	maxAge := ""
	switch {
	case cfg.MaxAge == 0:
		maxAge = "600"
	case cfg.MaxAge > 0:
		maxAge = strconv.FormatInt(int64(cfg.MaxAge/time.Second), 10)
	}

	allowed := func(origin string) bool {
		return anyOrigin || slices.Contains(origins, strings.ToLower(origin))
	}
	setOrigin := func(h http.Header, origin string) {
		if anyOrigin && !cfg.AllowCredentials {
			h.Set("Access-Control-Allow-Origin", "*")
		} else {
			h.Set("Access-Control-Allow-Origin", origin)
		}
		if cfg.AllowCredentials {
			h.Set("Access-Control-Allow-Credentials", "true")
		}
	}
	headersAllowed := func(req string) bool {
		for _, f := range strings.Split(req, ",") {
			f = strings.ToLower(strings.TrimSpace(f))
			if f != "" && !slices.Contains(lowerHeaders, f) {
				return false
			}
		}
		return true
	}

	return func(next http.Handler) http.Handler {
		if len(cfg.AllowedOrigins) == 0 {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			origin := r.Header.Get("Origin")
			if origin == "" {
				next.ServeHTTP(w, r)
				return
			}
			h := w.Header()
			reqMethod := r.Header.Get("Access-Control-Request-Method")
			if r.Method == http.MethodOptions && reqMethod != "" {
				h.Add("Vary", "Origin")
				h.Add("Vary", "Access-Control-Request-Method")
				h.Add("Vary", "Access-Control-Request-Headers")
				reqHeaders := strings.Join(r.Header.Values("Access-Control-Request-Headers"), ",")
				if allowed(origin) && slices.Contains(methods, reqMethod) && headersAllowed(reqHeaders) {
					setOrigin(h, origin)
					h.Set("Access-Control-Allow-Methods", allowMethods)
					if allowHeaders != "" {
						h.Set("Access-Control-Allow-Headers", allowHeaders)
					}
					if maxAge != "" {
						h.Set("Access-Control-Max-Age", maxAge)
					}
				}
				w.WriteHeader(http.StatusNoContent)
				return
			}
			h.Add("Vary", "Origin")
			if allowed(origin) {
				setOrigin(h, origin)
				if exposeHeaders != "" {
					h.Set("Access-Control-Expose-Headers", exposeHeaders)
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

package middleware

import "net/http"

// DefaultContentSecurityPolicy is the Content-Security-Policy sent when
// SecurityHeadersConfig.ContentSecurityPolicy is empty.
const DefaultContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; font-src 'self'; connect-src 'self' ws: wss:; frame-ancestors 'none'; " +
	"base-uri 'self'; form-action 'self'"

// SecurityHeadersConfig configures [SecurityHeaders].
type SecurityHeadersConfig struct {
	// ContentSecurityPolicy replaces the default policy
	// (DefaultContentSecurityPolicy) when not empty.
	ContentSecurityPolicy string
}

// SecurityHeaders sets the security headers of the wire contract on every
// response: X-Frame-Options, X-Content-Type-Options, X-XSS-Protection,
// Strict-Transport-Security, Referrer-Policy, Permissions-Policy,
// Content-Security-Policy and Cross-Origin-Opener-Policy, and removes Server
// and X-Powered-By.
//
// The headers are set before the inner handler runs, so that a layer outside
// this one that answers on the same writer (a recover placed outside, for
// instance) still sends them, and they are set again at the moment the
// response header is written, so that nothing inside can remove or change
// them. Place it outermost.
func SecurityHeaders(cfg SecurityHeadersConfig) Middleware {
	values := securityHeaders(cfg)
	apply := func(h http.Header) {
		for _, kv := range values {
			h[kv[0]] = []string{kv[1]}
		}
		delete(h, "Server")
		delete(h, "X-Powered-By")
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			apply(w.Header())
			sw := &respWriter{w: w, beforeHeader: func(int) { apply(w.Header()) }}
			next.ServeHTTP(sw, r)
		})
	}
}

// securityHeaders returns the names and values of the security headers.
func securityHeaders(cfg SecurityHeadersConfig) [8][2]string {
	csp := cfg.ContentSecurityPolicy
	if csp == "" {
		csp = DefaultContentSecurityPolicy
	}
	return [...][2]string{
		{"X-Frame-Options", "DENY"},
		{"X-Content-Type-Options", "nosniff"},
		{"X-Xss-Protection", "0"},
		{"Strict-Transport-Security", "max-age=31536000; includeSubDomains"},
		{"Referrer-Policy", "strict-origin-when-cross-origin"},
		{"Permissions-Policy", "geolocation=(), microphone=(), camera=()"},
		{"Content-Security-Policy", csp},
		{"Cross-Origin-Opener-Policy", "same-origin"},
	}
}

package middleware

import (
	"net/http"
	"strings"

	"github.com/pkgroute/pkgroute/auth"
)

// Routes wraps the application's ServeMux as the innermost layer of the
// stack. Before the route handler runs it reports the matched pattern and
// the authenticated principal (auth.FromContext) to the [AccessLog] and
// [Metrics] layers above it, which only see their own copy of the request.
// Requests that match no pattern are answered with the wire error body
// instead of the ServeMux's plain text: 404 not_found, and 405
// method_not_allowed with the Allow header. "OPTIONS *" (which [NewServer]
// passes to the handler, so that it gets the security headers and host
// checks) is answered 200 with an empty body.
func Routes(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.RequestURI == "*" {
			if r.Method != http.MethodOptions {
				NotFound(w, r)
				return
			}
			w.Header().Set("Content-Length", "0")
			w.WriteHeader(http.StatusOK)
			return
		}
		_, pattern := mux.Handler(r)
		if r.Method == http.MethodConnect {
			pattern = "" // a CONNECT redirect reports the raw path
		}
		if info := infoFrom(r.Context()); info != nil {
			route := ""
			if pattern != "" {
				route = routeLabel(pattern)
			}
			info.routed(route, auth.FromContext(r.Context()))
		}
		if pattern == "" {
			inner := w
			w = &respWriter{w: inner, intercept: func(code int) bool {
				switch code {
				case http.StatusNotFound:
					NotFound(inner, r)
					return true
				case http.StatusMethodNotAllowed:
					writeMethodNotAllowed(inner)
					return true
				}
				return false
			}}
		}
		mux.ServeHTTP(w, r)
	})
}

// Match tells the [AccessLog] and [Metrics] layers above it which route
// pattern of mux a request will match, before the layers below it run, so
// that the answers those layers give themselves (401 for a bad token, 413,
// 429) are counted and logged under their route instead of "unmatched".
// Place it right below AccessLog and Metrics; [Routes] still serves the
// request (and names the principal) at the bottom.
func Match(mux *http.ServeMux) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if info := infoFrom(r.Context()); info != nil && r.Method != http.MethodConnect && r.RequestURI != "*" {
				if _, pattern := mux.Handler(r); pattern != "" {
					info.routed(routeLabel(pattern), nil)
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

// routeLabel is the route label of a ServeMux pattern: the pattern without
// its method ("GET /authors/{id}" -> "/authors/{id}"), since the method is a
// label of its own.
func routeLabel(pattern string) string {
	if i := strings.IndexAny(pattern, " \t"); i >= 0 {
		return strings.TrimLeft(pattern[i:], " \t")
	}
	return pattern
}

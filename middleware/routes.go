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
// method_not_allowed with the Allow header.
func Routes(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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

// routeLabel is the route label of a ServeMux pattern: the pattern without
// its method ("GET /authors/{id}" -> "/authors/{id}"), since the method is a
// label of its own.
func routeLabel(pattern string) string {
	if i := strings.IndexAny(pattern, " \t"); i >= 0 {
		return strings.TrimLeft(pattern[i:], " \t")
	}
	return pattern
}

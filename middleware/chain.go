package middleware

import "net/http"

// Middleware is the shape of every layer in this package.
type Middleware = func(http.Handler) http.Handler

// Chain composes middlewares into one; the first is the outermost, so
// Chain(a, b, c)(h) serves a request through a, then b, then c, then h.
// Nil entries are skipped.
func Chain(mws ...Middleware) Middleware {
	return func(h http.Handler) http.Handler {
		for i := len(mws) - 1; i >= 0; i-- {
			if mws[i] != nil {
				h = mws[i](h)
			}
		}
		return h
	}
}

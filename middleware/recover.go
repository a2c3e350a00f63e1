package middleware

import (
	"log/slog"
	"net/http"
	"runtime/debug"

	"github.com/pkgroute/pkgroute/internal/errkind"
	"github.com/pkgroute/pkgroute/internal/httperr"
)

// RecoverConfig configures [Recover].
type RecoverConfig struct {
	// Logger receives the panic report; nil uses the request logger
	// ([LoggerFrom]).
	Logger *slog.Logger
}

// Recover turns a panic below it into 500 internal_error, logged once at
// error level with the panic value, the stack and the correlation id; the
// connection stays usable.
//
// A panic with http.ErrAbortHandler is passed on untouched (net/http aborts
// the response quietly). When the response had already started, nothing
// valid can be answered any more: the panic is logged and the response is
// aborted with http.ErrAbortHandler, so that the client sees a broken
// response rather than a truncated one that looks complete.
func Recover(cfg RecoverConfig) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rw := &respWriter{w: w}
			defer func() {
				p := recover()
				if p == nil {
					return
				}
				if p == http.ErrAbortHandler {
					panic(p)
				}
				requestLogger(r.Context(), cfg.Logger).LogAttrs(r.Context(), slog.LevelError, "panic",
					slog.String("method", r.Method),
					slog.String("path", r.URL.Path),
					slog.Any("panic", p),
					slog.String("stack", string(debug.Stack())))
				if rw.written() {
					panic(http.ErrAbortHandler)
				}
				httperr.Write(rw, http.StatusInternalServerError, errkind.Internal.Code(), internalMsg, nil, 0)
			}()
			next.ServeHTTP(rw, r)
		})
	}
}

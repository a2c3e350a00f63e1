package middleware

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/google/uuid"
)

// HeaderCorrelationID is the request and response header that carries the
// correlation id.
const HeaderCorrelationID = "X-Correlation-ID"

// CorrelationIDConfig configures [CorrelationID].
type CorrelationIDConfig struct {
	// Logger is the base of the request logger put in the context
	// ([LoggerFrom]); nil leaves the context without a logger, and
	// LoggerFrom then discards.
	Logger *slog.Logger
}

// CorrelationID gives each request a correlation id: the client's
// X-Correlation-ID when it is 1 to 64 characters of [A-Za-z0-9._-],
// otherwise a new random UUID. The id is stored in the context
// ([CorrelationIDFrom]), set on the response before the inner handler runs
// (so every answer below echoes it), and attached as correlation_id to the
// request logger ([LoggerFrom]).
func CorrelationID(cfg CorrelationIDConfig) Middleware {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			id := r.Header.Get(HeaderCorrelationID)
			if !validCorrelationID(id) {
				id = uuid.NewString()
			}
			w.Header().Set(HeaderCorrelationID, id)
			ctx := context.WithValue(r.Context(), correlationKey{}, id)
			if cfg.Logger != nil {
				ctx = context.WithValue(ctx, loggerKey{}, cfg.Logger.With(slog.String("correlation_id", id)))
			}
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

func validCorrelationID(s string) bool {
	if len(s) < 1 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

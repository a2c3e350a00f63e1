package middleware

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// defaultAccessLogSkip lists the paths AccessLog leaves out when
// AccessLogConfig.SkipPaths is nil.
var defaultAccessLogSkip = []string{"/health", "/metrics"}

// redactedValue replaces the value of a sensitive query parameter in logs.
const redactedValue = "REDACTED"

// AccessLogConfig configures [AccessLog].
type AccessLogConfig struct {
	// Logger receives one line per request; nil uses the request logger
	// ([LoggerFrom]).
	Logger *slog.Logger
	// SkipPaths are request paths that are not logged. Nil means "/health"
	// and "/metrics"; an empty, non-nil slice logs every path.
	SkipPaths []string
	// RedactQuery names more query parameters whose values are replaced by
	// REDACTED, in addition to the built-in ones (any name containing
	// "token", "password", "passwd", "secret", "apikey", "api_key",
	// "authorization", "credential", "jwt" or "session", ignoring case).
	RedactQuery []string
}

// AccessLog writes one "http request" line at info level for each finished
// request, with method, route (the matched pattern, see [Routes]), path,
// query (sensitive values redacted), status, bytes, duration, user,
// client_ip (from [ClientIP]) and correlation_id. It never logs request
// headers, so the Authorization header cannot leak. A panic passing through
// is logged with status 500.
func AccessLog(cfg AccessLogConfig) Middleware {
	skip := cfg.SkipPaths
	if skip == nil {
		skip = defaultAccessLogSkip
	}
	extra := make([]string, len(cfg.RedactQuery))
	for i, k := range cfg.RedactQuery {
		extra[i] = strings.ToLower(k)
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			for _, p := range skip {
				if r.URL.Path == p {
					next.ServeHTTP(w, r)
					return
				}
			}
			start := time.Now()
			info, r := observe(r)
			rw := &respWriter{w: w}
			done := false
			defer func() {
				status := rw.status
				if !done {
					status = http.StatusInternalServerError
				} else if status == 0 {
					status = http.StatusOK
				}
				attrs := make([]slog.Attr, 0, 11)
				attrs = append(attrs,
					slog.String("method", r.Method),
					slog.String("route", info.routeOf(r)),
					slog.String("path", r.URL.Path))
				if r.URL.RawQuery != "" {
					attrs = append(attrs, slog.String("query", redactQuery(r.URL.RawQuery, extra)))
				}
				attrs = append(attrs,
					slog.Int("status", status),
					slog.Int64("bytes", rw.bytes),
					slog.Duration("duration", time.Since(start)))
				if u := info.userOf(r); u != "" {
					attrs = append(attrs, slog.String("user", u))
				}
				if ip, ok := ClientIPFrom(r.Context()); ok {
					attrs = append(attrs, slog.String("client_ip", ip.String()))
				}
				requestLogger(r.Context(), cfg.Logger).LogAttrs(r.Context(), slog.LevelInfo, "http request", attrs...)
			}()
			next.ServeHTTP(rw, r)
			done = true
		})
	}
}

var sensitiveParts = []string{
	"token", "password", "passwd", "secret", "apikey", "api_key",
	"authorization", "credential", "jwt", "session",
}

func sensitiveKey(k string, extra []string) bool {
	k = strings.ToLower(k)
	for _, p := range sensitiveParts {
		if strings.Contains(k, p) {
			return true
		}
	}
	for _, e := range extra {
		if k == e {
			return true
		}
	}
	return false
}

// redactQuery returns the raw query with the values of sensitive
// parameters replaced, keeping order and the other values as sent. A
// parameter whose name cannot be decoded is replaced as a whole.
func redactQuery(raw string, extra []string) string {
	var b strings.Builder
	b.Grow(len(raw))
	for i, part := range strings.Split(raw, "&") {
		if i > 0 {
			b.WriteByte('&')
		}
		key, _, hasValue := strings.Cut(part, "=")
		name, err := url.QueryUnescape(key)
		switch {
		case err != nil:
			b.WriteString(redactedValue)
			continue
		case sensitiveKey(name, extra):
			b.WriteString(key)
			if hasValue {
				b.WriteString("=" + redactedValue)
			}
			continue
		}
		b.WriteString(part)
	}
	return b.String()
}

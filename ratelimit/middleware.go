package ratelimit

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pkgroute/pkgroute/internal/errkind"
	"github.com/pkgroute/pkgroute/internal/httperr"
	"github.com/pkgroute/pkgroute/internal/lograte"
	"github.com/prometheus/client_golang/prometheus"
)

// defaultExclude are the paths the middleware does not limit when
// Config.Exclude is nil.
func defaultExclude() []string { return []string{"/health", "/metrics"} }

// Config configures [Middleware]. Limiter and Rate are required.
type Config struct {
	// Limiter decides each request.
	Limiter Limiter
	// Rate is applied to every key.
	Rate Rate
	// Key returns the identity of an authenticated caller (e.g. the user id
	// of the principal that the authentication middleware put in the
	// context), or "" for an anonymous request. Authenticated requests are
	// limited per user (limit_type per_user), the others per client IP
	// (per_ip). Nil limits every request by client IP.
	Key func(*http.Request) string
	// ClientIP returns the client address of a request. Nil means
	// [RemoteIP]; use [ClientIP] to honour X-Forwarded-For from trusted
	// proxies.
	ClientIP func(*http.Request) string
	// Exclude lists paths (exact match of URL.Path) that are not limited and
	// get no headers. Nil means /health and /metrics; an empty non-nil slice
	// excludes nothing. Apps add their WebSocket endpoint, which has its own
	// limits.
	Exclude []string
	// Shadow counts and logs requests over the limit but never refuses
	// them, and writes no rate limit headers: for rolling out new limits.
	// Limiter errors are logged and the request proceeds.
	Shadow bool
	// Logger receives refusals in shadow mode (info) and limiter failures
	// (warn, at most one line every 10 s, with the number left out); nil
	// discards.
	Logger *slog.Logger
	// Registerer receives rate_limit_hits_total{limit_type}; nil means no
	// metrics.
	Registerer prometheus.Registerer
}

// Middleware returns HTTP middleware that limits requests with cfg.Limiter.
//
// Every limited response carries the headers of the wire contract:
//
//	RateLimit-Policy: "default";q=<quota>;w=<window seconds>
//	RateLimit: "default";r=<remaining>;t=<seconds to reset>
//	X-RateLimit-Limit, X-RateLimit-Remaining, X-RateLimit-Reset (= t)
//
// where remaining counts the current request. A request over the limit is
// answered 429 rate_limit_exceeded with Retry-After (seconds, 1 to the
// window, or to the m windows of a burst: see [Rate]); a limiter error is answered with the status of its kind (503
// service_unavailable with Retry-After for a backend failing closed, with
// RateLimit-Policy and X-RateLimit-Limit but no count). Error
// bodies have the shape {"error":{"code","msg","details"}}.
//
// Middleware panics when cfg has no Limiter or an invalid Rate (a
// configuration mistake found at startup).
func Middleware(cfg Config) func(http.Handler) http.Handler {
	if cfg.Limiter == nil {
		panic("ratelimit: Middleware: Config.Limiter is nil")
	}
	if err := cfg.Rate.Validate(); err != nil {
		panic("ratelimit: Middleware: " + err.Error())
	}
	if cfg.ClientIP == nil {
		cfg.ClientIP = RemoteIP
	}
	if cfg.Exclude == nil {
		cfg.Exclude = defaultExclude()
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	flog := lograte.New(log, 0, nil)
	metrics := NewMetrics(cfg.Registerer)
	windowSec := ceilSeconds(cfg.Rate.Window)
	span, _ := cfg.Rate.Sustained()
	spanSec := ceilSeconds(span) // the longest wait: the window, m windows with a burst
	policy := fmt.Sprintf(`"default";q=%d;w=%d`, cfg.Rate.Quota(), windowSec)
	limitStr := strconv.Itoa(cfg.Rate.Quota())

	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if slices.Contains(cfg.Exclude, r.URL.Path) {
				next.ServeHTTP(w, r)
				return
			}
			limitType, key := LimitPerIP, ""
			if cfg.Key != nil {
				if user := cfg.Key(r); user != "" {
					limitType, key = LimitPerUser, "user:"+user
				}
			}
			if key == "" {
				key = "ip:" + cfg.ClientIP(r)
			}
			res, err := cfg.Limiter.Allow(r.Context(), key, cfg.Rate)
			if err != nil {
				cause := err
				if ue, ok := errors.AsType[*UnavailableError](err); ok {
					cause = ue.Err
				}
				// Once per interval: a failing backend fails every request.
				flog.Log(r.Context(), slog.LevelWarn, "rate limiter failed",
					"key", key, "error", cause.Error())
				if cfg.Shadow {
					next.ServeHTTP(w, r)
					return
				}
				kind := errkind.Of(err)
				if kind == errkind.Unavailable {
					// The quota is known, the count is not: the policy
					// and the limit, without remaining or reset.
					h := w.Header()
					h.Set("RateLimit-Policy", policy)
					h.Set("X-RateLimit-Limit", limitStr)
					httperr.Write(w, kind.HTTPStatus(), kind.Code(), "Rate limiter unavailable", nil, errkind.RetryAfterOf(err))
					return
				}
				httperr.Write(w, http.StatusInternalServerError, errkind.Internal.Code(), "Internal server error", nil, 0)
				return
			}
			if !res.Allowed {
				metrics.Hit(limitType)
			}
			if cfg.Shadow {
				if !res.Allowed {
					log.LogAttrs(r.Context(), slog.LevelInfo, "rate limit exceeded (shadow)",
						slog.String("key", key), slog.String("limit_type", limitType))
				}
				next.ServeHTTP(w, r)
				return
			}
			reset := strconv.Itoa(ceilSeconds(res.ResetAfter))
			remaining := strconv.Itoa(res.Remaining)
			h := w.Header()
			h.Set("RateLimit-Policy", policy)
			h.Set("RateLimit", `"default";r=`+remaining+";t="+reset)
			h.Set("X-RateLimit-Limit", limitStr)
			h.Set("X-RateLimit-Remaining", remaining)
			h.Set("X-RateLimit-Reset", reset)
			if !res.Allowed {
				retry := min(max(1, ceilSeconds(res.RetryAfter)), spanSec)
				h.Set("Retry-After", strconv.Itoa(retry))
				httperr.Write(w, http.StatusTooManyRequests, errkind.RateLimited.Code(), "Rate limit exceeded", nil, 0)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// ceilSeconds returns d in whole seconds, rounded up.
func ceilSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}

// RemoteIP returns the IP address of the request's peer (r.RemoteAddr
// without the port).
func RemoteIP(r *http.Request) string {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap().String()
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// ClientIP returns a function that finds the client address of a request
// that may have passed through proxies. X-Forwarded-For is honoured only
// when the peer is in trusted: the header is read from the right, skipping
// trusted addresses, and the first untrusted address is the client (the
// leftmost one when all are trusted). Without trusted proxies it is
// [RemoteIP].
func ClientIP(trusted []netip.Prefix) func(*http.Request) string {
	if len(trusted) == 0 {
		return RemoteIP
	}
	isTrusted := func(a netip.Addr) bool {
		a = a.Unmap()
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return func(r *http.Request) string {
		peer := RemoteIP(r)
		addr, err := netip.ParseAddr(peer)
		if err != nil || !isTrusted(addr) {
			return peer
		}
		client := addr.Unmap()
		values := r.Header.Values("X-Forwarded-For")
		for i := len(values) - 1; i >= 0; i-- {
			hops := strings.Split(values[i], ",")
			for j := len(hops) - 1; j >= 0; j-- {
				hop, ok := parseHop(hops[j])
				if !ok {
					return client.String()
				}
				client = hop
				if !isTrusted(hop) {
					return client.String()
				}
			}
		}
		return client.String()
	}
}

func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// ParsePrefixes parses CIDR prefixes or single addresses (e.g. "10.0.0.0/8",
// "127.0.0.1", "::1"), for [ClientIP]. Empty strings are skipped.
func ParsePrefixes(list ...string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("ratelimit: trusted proxy %q: not an address or CIDR prefix", s)
		}
		a = a.Unmap()
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

package middleware

import (
	"net/http"
	"strings"
)

// TrustedHostsConfig configures [TrustedHosts].
type TrustedHostsConfig struct {
	// Hosts is the allow-list. An entry without a port ("api.example.com",
	// "[::1]") matches that host on any port; "host:port" matches only a
	// Host naming that port; "*" matches every host. Matching ignores case
	// and a trailing dot. Empty means every host is allowed (the middleware
	// does nothing); production deployments list their names.
	Hosts []string
}

// TrustedHosts answers 400 invalid_host when the request's host is not in
// the allow-list. It checks r.Host, which for an absolute-form request line
// ("GET http://evil.example/ HTTP/1.1") is the URI's host rather than the
// Host header.
func TrustedHosts(cfg TrustedHostsConfig) Middleware {
	type entry struct{ host, port string }
	var entries []entry
	allowAll := len(cfg.Hosts) == 0
	for _, h := range cfg.Hosts {
		h = strings.TrimSpace(h)
		if h == "*" {
			allowAll = true
			continue
		}
		host, port := splitHostPort(h)
		entries = append(entries, entry{host, port})
	}
	return func(next http.Handler) http.Handler {
		if allowAll {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			host, port := splitHostPort(r.Host)
			if host != "" {
				for _, e := range entries {
					if e.host == host && (e.port == "" || e.port == port) {
						next.ServeHTTP(w, r)
						return
					}
				}
			}
			WriteError(w, r, ErrInvalidHost)
		})
	}
}

// splitHostPort splits "host", "host:port", "[v6]" or "[v6]:port" and
// normalises the host (lower case, no brackets, no trailing dot).
func splitHostPort(s string) (host, port string) {
	s = strings.ToLower(s)
	switch {
	case strings.HasPrefix(s, "["):
		i := strings.IndexByte(s, ']')
		if i < 0 {
			return "", ""
		}
		host, rest := s[1:i], s[i+1:]
		if rest != "" {
			if rest[0] != ':' {
				return "", ""
			}
			port = rest[1:]
		}
		return host, port
	case strings.Count(s, ":") == 1:
		i := strings.IndexByte(s, ':')
		host, port = s[:i], s[i+1:]
	default:
		host = s // a bare IPv6 address is not a valid Host; it matches only itself
	}
	return strings.TrimSuffix(host, "."), port
}

package middleware

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientIPConfig configures [ClientIP].
type ClientIPConfig struct {
	// TrustedProxies are the networks of the reverse proxies whose
	// X-Forwarded-For is believed. Empty means none: the client is always
	// the peer address.
	TrustedProxies []netip.Prefix
}

// ClientIP resolves the client address and stores it in the context
// ([ClientIPFrom]).
//
// The peer address is the client unless it belongs to a trusted proxy. Then
// X-Forwarded-For is read from the right: entries added by trusted proxies
// are skipped and the first address that is not a trusted proxy is the
// client. An entry that is not an address stops the walk at the last trusted
// hop, and when every entry is trusted the leftmost one is the client.
func ClientIP(cfg ClientIPConfig) Middleware {
	trusted := make([]netip.Prefix, len(cfg.TrustedProxies))
	for i, p := range cfg.TrustedProxies {
		trusted[i] = p.Masked()
	}
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ip := parseAddr(r.RemoteAddr)
			if ip.IsValid() && isTrusted(ip) {
				ip = forwardedFor(r.Header.Values("X-Forwarded-For"), ip, isTrusted)
			}
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), clientIPKey{}, ip)))
		})
	}
}

// forwardedFor walks the X-Forwarded-For entries from the right, starting
// at the trusted peer.
func forwardedFor(headers []string, peer netip.Addr, isTrusted func(netip.Addr) bool) netip.Addr {
	cur := peer
	for i := len(headers) - 1; i >= 0; i-- {
		list := headers[i]
		for list != "" {
			var entry string
			if j := strings.LastIndexByte(list, ','); j >= 0 {
				entry, list = list[j+1:], list[:j]
			} else {
				entry, list = list, ""
			}
			entry = strings.TrimSpace(entry)
			if entry == "" {
				continue
			}
			a := parseAddr(entry)
			if !a.IsValid() {
				return cur
			}
			if !isTrusted(a) {
				return a
			}
			cur = a
		}
	}
	return cur
}

// parseAddr parses "ip", "ip:port" or "[ip]:port"; the zero Addr when it
// is none of those. IPv4-mapped IPv6 addresses become IPv4.
func parseAddr(s string) netip.Addr {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap().WithZone("")
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		if a, err := netip.ParseAddr(host); err == nil {
			return a.Unmap().WithZone("")
		}
	}
	return netip.Addr{}
}

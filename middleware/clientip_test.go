package middleware_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/pkgroute/pkgroute/middleware"
)

func TestClientIP(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	tests := []struct {
		name    string
		trusted []netip.Prefix
		remote  string
		xff     []string
		want    string
	}{
		{"no proxies: peer", nil, "203.0.113.9:5555", []string{"1.2.3.4"}, "203.0.113.9"},
		{"untrusted peer ignores XFF", proxies, "203.0.113.9:5555", []string{"1.2.3.4"}, "203.0.113.9"},
		{"trusted peer, one hop", proxies, "10.0.0.2:5555", []string{"198.51.100.7"}, "198.51.100.7"},
		{"spoofed left entry ignored", proxies, "10.0.0.2:5555", []string{"6.6.6.6, 198.51.100.7"}, "198.51.100.7"},
		{"chain of trusted proxies", proxies, "10.0.0.2:5555", []string{"198.51.100.7, 10.1.1.1", "10.2.2.2"}, "198.51.100.7"},
		{"all trusted: leftmost", proxies, "10.0.0.2:5555", []string{"10.9.9.9, 10.1.1.1"}, "10.9.9.9"},
		{"garbage stops at last trusted hop", proxies, "10.0.0.2:5555", []string{"198.51.100.7, garbage, 10.1.1.1"}, "10.1.1.1"},
		{"entry with port", proxies, "10.0.0.2:5555", []string{"198.51.100.7:1234"}, "198.51.100.7"},
		{"ipv6 entry", proxies, "[fd00::1]:5555", []string{"[2001:db8::5]:80"}, "2001:db8::5"},
		{"mapped peer", proxies, "[::ffff:10.0.0.2]:5555", []string{"198.51.100.7"}, "198.51.100.7"},
		{"trusted peer, no header", proxies, "10.0.0.2:5555", nil, "10.0.0.2"},
		{"empty entries skipped", proxies, "10.0.0.2:5555", []string{"198.51.100.7, ,"}, "198.51.100.7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got netip.Addr
			var ok bool
			h := middleware.ClientIP(middleware.ClientIPConfig{TrustedProxies: tc.trusted})(
				http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					got, ok = middleware.ClientIPFrom(r.Context())
				}))
			req := httptest.NewRequest("GET", "/", nil)
			req.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			h.ServeHTTP(httptest.NewRecorder(), req)
			assert.True(t, ok)
			assert.Equal(t, tc.want, got.String())
		})
	}
}

func TestClientIPUnparsablePeer(t *testing.T) {
	var ok bool
	h := middleware.ClientIP(middleware.ClientIPConfig{})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, ok = middleware.ClientIPFrom(r.Context()) }))
	req := httptest.NewRequest("GET", "/", nil)
	req.RemoteAddr = "@"
	h.ServeHTTP(httptest.NewRecorder(), req)
	assert.False(t, ok)
	_, ok = middleware.ClientIPFrom(req.Context())
	assert.False(t, ok, "no middleware, no address")
}

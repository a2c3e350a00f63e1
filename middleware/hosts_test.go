package middleware_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pkgroute/pkgroute/middleware"
)

func TestTrustedHosts(t *testing.T) {
	tests := []struct {
		name  string
		hosts []string
		host  string
		ok    bool
	}{
		{"zero config allows all", nil, "anything.example", true},
		{"host any port", []string{"api.example.com"}, "api.example.com:8443", true},
		{"host no port", []string{"api.example.com"}, "api.example.com", true},
		{"case and trailing dot", []string{"API.Example.com"}, "api.example.COM.", true},
		// A trailing dot is the absolute form of the same DNS name; one only.
		{"trailing dot with port", []string{"localhost"}, "localhost.:8080", true},
		{"trailing dot in the list", []string{"localhost."}, "localhost", true},
		{"two trailing dots", []string{"localhost"}, "localhost..", false},
		{"dot alone", []string{"localhost"}, ".", false},
		{"other host", []string{"api.example.com"}, "evil.example.com", false},
		{"suffix is not a match", []string{"example.com"}, "evil-example.com", false},
		{"host:port exact", []string{"api.example.com:443"}, "api.example.com:443", true},
		{"host:port other port", []string{"api.example.com:443"}, "api.example.com:8443", false},
		{"host:port without port", []string{"api.example.com:443"}, "api.example.com", false},
		{"ipv6 any port", []string{"[::1]"}, "[::1]:8080", true},
		{"ipv6 exact port", []string{"[::1]:8080"}, "[::1]:8080", true},
		{"ipv6 other", []string{"[::1]"}, "[::2]:8080", false},
		{"star", []string{"api.example.com", "*"}, "whatever:1", true},
		{"empty host refused", []string{"api.example.com"}, "", false},
		{"malformed refused", []string{"api.example.com"}, "[api.example.com", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			called := false
			h := middleware.TrustedHosts(middleware.TrustedHostsConfig{Hosts: tc.hosts})(
				http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called = true }))
			req := httptest.NewRequest("GET", "/", nil)
			req.Host = tc.host
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			assert.Equal(t, tc.ok, called)
			if !tc.ok {
				assert.Equal(t, http.StatusBadRequest, rec.Code)
				assert.JSONEq(t, `{"error":{"code":"invalid_host","msg":"host not allowed","details":null}}`, rec.Body.String())
			}
		})
	}
}

// An absolute-form request line names the host in the URI; net/http puts
// it in r.Host, and that is what is checked, not the Host header.
func TestTrustedHostsAbsoluteForm(t *testing.T) {
	h := middleware.TrustedHosts(middleware.TrustedHostsConfig{Hosts: []string{"good.example"}})(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	srv := httptest.NewServer(h)
	defer srv.Close()

	send := func(requestLine string) int {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		require.NoError(t, err)
		defer c.Close()
		_, err = fmt.Fprintf(c, "%s\r\nHost: good.example\r\nConnection: close\r\n\r\n", requestLine)
		require.NoError(t, err)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err)
		defer resp.Body.Close()
		return resp.StatusCode
	}
	assert.Equal(t, 200, send("GET /x HTTP/1.1"))
	assert.Equal(t, 400, send("GET http://evil.example/x HTTP/1.1"))
	assert.Equal(t, 200, send("GET http://GOOD.example:81/x HTTP/1.1"))
}

package middleware

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/pkgroute/pkgroute/internal/testenv"
)

func TestServerLogKind(t *testing.T) {
	for line, want := range map[string]string{
		"http: TLS handshake error from 10.0.0.1:5555: EOF":                                     "http: TLS handshake error from",
		"http: Accept error: accept tcp [::]:80: accept4: too many open files; retrying in 5ms": "http: Accept error:",
		"http: panic serving 127.0.0.1:1234: boom":                                              "http: panic serving",
		"http: superfluous response.WriteHeader call from x.y (file.go:12)":                     "http: superfluous response.WriteHeader call from x.y",
		"": "",
	} {
		assert.Equal(t, want, serverLogKind(line), line)
	}
}

// TestServerErrorLogIsRateLimited checks that net/http's own error lines,
// which a fault repeats (accept failing, TLS handshakes of a scanner), are
// logged once per kind per interval.
func TestServerErrorLogIsRateLimited(t *testing.T) {
	var logs testenv.Buffer
	srv := NewServer("", nil, ServerConfig{Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	for i := range 100 {
		srv.ErrorLog.Printf("http: TLS handshake error from 10.0.0.%d:5555: EOF", i)
		srv.ErrorLog.Printf("http: Accept error: accept tcp: too many open files; retrying in %dms", i)
	}
	assert.Equal(t, 1, strings.Count(logs.String(), "http: TLS handshake error"), logs.String())
	assert.Equal(t, 1, strings.Count(logs.String(), "http: Accept error"), logs.String())
	assert.Contains(t, logs.String(), `"level":"WARN"`)
}

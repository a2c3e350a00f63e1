package wstest

import (
	"context"
	"strings"

	"github.com/pkgroute/pkgroute/router"
)

// Call is Client.Call for the application's own package id type: no
// conversion to int64 at the call site.
func Call[T router.ID](ctx context.Context, c *Client, id T, data any) (*Message, error) {
	return c.Call(ctx, int64(id), data)
}

// URL returns the WebSocket URL of path on the server at base, an http://
// or https:// URL such as httptest.Server.URL: "http://127.0.0.1:1234" and
// "/web" give "ws://127.0.0.1:1234/web".
func URL(base, path string) string {
	base = strings.TrimRight(base, "/")
	switch {
	case strings.HasPrefix(base, "https://"):
		base = "wss://" + strings.TrimPrefix(base, "https://")
	case strings.HasPrefix(base, "http://"):
		base = "ws://" + strings.TrimPrefix(base, "http://")
	}
	return base + path
}

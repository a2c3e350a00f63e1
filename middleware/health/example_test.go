package health_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/pkgroute/pkgroute/middleware/health"
)

// The wire contract's health body: a database, Redis not configured, and
// the WebSocket endpoint with its connection count.
func ExampleNew() {
	h := health.New(health.Config{Checks: []health.Check{
		{Name: "database", Func: func(ctx context.Context) error { return nil }}, // db.PingContext
		{Name: "redis"}, // nil Func: not configured
		{Name: "websocket", Func: func(ctx context.Context) error { return nil },
			Fields: func() []health.Field { return []health.Field{{Key: "active_connections", Value: 2}} }},
	}})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/health", nil))
	fmt.Print(rec.Code, " ", rec.Body.String())
	// Output:
	// 200 {"status":"healthy","database":"healthy","redis":"disabled","websocket":{"status":"healthy","active_connections":2}}
}

package redislimit_test

import (
	"context"
	"log"
	"net/http"
	"time"

	"github.com/pkgroute/pkgroute/ratelimit"
	"github.com/pkgroute/pkgroute/ratelimit/redislimit"
)

// Wiring the Redis limiters into an app: one client with short timeouts, a
// sliding window for HTTP requests, and connection slots renewed by Run.
func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	client, err := redislimit.NewClient("redis://127.0.0.1:6379/0", 100*time.Millisecond)
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	limiter := redislimit.New(client, redislimit.Config{FailMode: ratelimit.FailOpen, LocalCache: true})
	limit := ratelimit.Middleware(ratelimit.Config{
		Limiter: limiter,
		Rate:    ratelimit.Rate{Limit: 100, Window: time.Minute, Burst: 20},
	})
	mux := http.NewServeMux()
	_ = limit(mux)

	conns := redislimit.NewConnections(client, redislimit.ConnectionsConfig{}) // lease 45 s, renewed every 15 s
	go func() { _ = conns.Run(ctx) }()                                         // stopped by cancel
}

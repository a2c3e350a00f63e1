package ws_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/ratelimit"
	"github.com/pkgroute/pkgroute/router"
	"github.com/pkgroute/pkgroute/router/ws"
)

var pingMsg = []byte(`{"pkg_id":10,"req_id":"5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d3a","method":"","data":{"n":1}}`)

// benchEndpoint serves PING on a loopback server.
func benchEndpoint(b testing.TB, cfg ws.Config) (*ws.Endpoint[pkg], string) {
	r := router.New[pkg](router.Config{})
	r.Register(pkgPing, router.HandlerFunc[pkg](func(ctx context.Context, req *router.Request[pkg]) router.Response {
		return router.Response{Data: req.Data}
	}), router.Authenticated())
	cfg.Authenticator = fakeAuth
	e := ws.New(r, cfg)
	srv := httptest.NewServer(e)
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.Shutdown(ctx)
		srv.Close()
	})
	return e, "ws" + strings.TrimPrefix(srv.URL, "http")
}

// BenchmarkRoundTrip compares one request/reply round trip of a no-op
// package (PING) through the endpoint with a raw gorilla echo server, on
// one loopback connection each, in the same run.
func BenchmarkRoundTrip(b *testing.B) {
	roundTrips := func(b *testing.B, url string, h http.Header) {
		c, _, err := websocket.DefaultDialer.Dial(url, h)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		b.ReportAllocs()
		for b.Loop() {
			if err := c.WriteMessage(websocket.TextMessage, pingMsg); err != nil {
				b.Fatal(err)
			}
			if _, _, err := c.ReadMessage(); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("raw_gorilla_echo", func(b *testing.B) {
		roundTrips(b, echoServer(b, nil), nil)
	})
	b.Run("endpoint_ping", func(b *testing.B) {
		_, url := benchEndpoint(b, ws.Config{MessageRate: ratelimit.Rate{Limit: -1}})
		roundTrips(b, url, http.Header{"Authorization": {"Bearer user.ada"}})
	})
	b.Run("endpoint_ping_rate_limited", func(b *testing.B) {
		_, url := benchEndpoint(b, ws.Config{MessageRate: ratelimit.PerSecond(1_000_000)})
		roundTrips(b, url, http.Header{"Authorization": {"Bearer user.ada"}})
	})
}

// BenchmarkPipelined sends 4 requests in one write on one connection and
// reads their 4 replies (one op), through a raw gorilla echo and through
// the endpoint, where the replies of a pipeline share one write system
// call while each stays its own message.
func BenchmarkPipelined(b *testing.B) {
	const depth = 4
	var batch []byte
	for i := range depth {
		msg := fmt.Sprintf(`{"pkg_id":10,"req_id":"5b0c2f0e-8f3e-4a58-9c1b-2f7f4f1e9d%02d","method":"","data":{"n":1}}`, i)
		batch = append(batch, frame(finText, []byte(msg), true)...)
	}
	run := func(b *testing.B, url string, h http.Header) {
		c, _, err := websocket.DefaultDialer.Dial(url, h)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.NetConn().Write(batch); err != nil {
				b.Fatal(err)
			}
			for range depth {
				if _, _, err := c.ReadMessage(); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.Run("raw_gorilla_echo", func(b *testing.B) {
		run(b, echoServer(b, nil), nil)
	})
	b.Run("endpoint_ping", func(b *testing.B) {
		_, url := benchEndpoint(b, ws.Config{MessageRate: ratelimit.Rate{Limit: -1}})
		run(b, url, http.Header{"Authorization": {"Bearer user.ada"}})
	})
}

// BenchmarkPush pushes to one idle connection and reads the push (one op):
// the writer's path, without a request.
func BenchmarkPush(b *testing.B) {
	e, url := benchEndpoint(b, ws.Config{})
	c, _, err := websocket.DefaultDialer.Dial(url, http.Header{"Authorization": {"Bearer user.ada"}})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	data := map[string]int{"n": 1}
	b.ReportAllocs()
	for b.Loop() {
		if err := e.PushToUser(ctx, "id-ada", pkgPing, data); err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.ReadMessage(); err != nil {
			b.Fatal(err)
		}
	}
}

// echoServer is a raw gorilla server answering each message with
// answer(message): an echo when answer is nil.
func echoServer(b testing.TB, answer func([]byte) []byte) string {
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, msg, err := c.ReadMessage()
			if err != nil {
				return
			}
			if answer != nil {
				msg = answer(msg)
			}
			if err := c.WriteMessage(mt, msg); err != nil {
				return
			}
		}
	}))
	b.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

// BenchmarkRoundTripVsEcho alternates, in every iteration, a PING round
// trip through the endpoint, one through a raw gorilla echo server, and
// one through a raw gorilla server that calls router.Dispatch inline (the
// router's own cost without any transport feature), so that all three see
// the same machine load. It reports their mean times and the ratios
// endpoint/echo (the bar) and endpoint/dispatch (the transport's own
// overhead).
func BenchmarkRoundTripVsEcho(b *testing.B) {
	b.Run("message_limit", func(b *testing.B) {
		roundTripVsEcho(b, ws.Config{MessageRate: ratelimit.PerSecond(1_000_000)})
	})
	b.Run("no_message_limit", func(b *testing.B) {
		roundTripVsEcho(b, ws.Config{MessageRate: ratelimit.Rate{Limit: -1}})
	})
}

func roundTripVsEcho(b *testing.B, cfg ws.Config) {
	_, url := benchEndpoint(b, cfg)
	dial := func(url string, h http.Header) *websocket.Conn {
		c, _, err := websocket.DefaultDialer.Dial(url, h)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = c.Close() })
		return c
	}
	r := router.New[pkg](router.Config{})
	r.Register(pkgPing, router.HandlerFunc[pkg](func(ctx context.Context, req *router.Request[pkg]) router.Response {
		return router.Response{Data: req.Data}
	}), router.Authenticated())
	user := &auth.Principal{ID: "u", Username: "ada"}
	conns := []*websocket.Conn{
		dial(echoServer(b, nil), nil),
		dial(echoServer(b, func(m []byte) []byte { return r.Dispatch(context.Background(), user, m) }), nil),
		dial(url, http.Header{"Authorization": {"Bearer user.ada"}}),
	}
	rt := func(c *websocket.Conn) time.Duration {
		start := time.Now()
		if err := c.WriteMessage(websocket.TextMessage, pingMsg); err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.ReadMessage(); err != nil {
			b.Fatal(err)
		}
		return time.Since(start)
	}
	var total [3]time.Duration
	n := 0
	for b.Loop() {
		for i := range conns {
			k := (i + n) % len(conns) // rotate the order
			total[k] += rt(conns[k])
		}
		n++
	}
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(n) }
	b.ReportMetric(per(total[0]), "echo-ns/rt")
	b.ReportMetric(per(total[1]), "dispatch-ns/rt")
	b.ReportMetric(per(total[2]), "endpoint-ns/rt")
	b.ReportMetric(float64(total[2])/float64(total[0]), "endpoint/echo")
	b.ReportMetric(float64(total[2])/float64(total[1]), "endpoint/dispatch")
}

// rawUpgrade opens a connection with a hand-written handshake and no
// client-side buffers or goroutines, so that the footprint measured is the
// server's (plus one client socket). With firstMessage the token is sent
// in an auth frame and auth_ok is awaited.
func rawUpgrade(b testing.TB, addr, token string, firstMessage bool) net.Conn {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		b.Fatal(err)
	}
	req := "GET / HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	if !firstMessage {
		req += "Authorization: Bearer " + token + "\r\n"
	}
	if _, err := io.WriteString(nc, req+"\r\n"); err != nil {
		b.Fatal(err)
	}
	var resp []byte
	var buf [256]byte
	for !bytes.Contains(resp, []byte("\r\n\r\n")) {
		n, err := nc.Read(buf[:])
		if err != nil {
			b.Fatal(err)
		}
		resp = append(resp, buf[:n]...)
	}
	if !bytes.HasPrefix(resp, []byte("HTTP/1.1 101")) {
		b.Fatalf("upgrade refused: %s", resp)
	}
	if firstMessage {
		if _, err := nc.Write(frame(finText, []byte(`{"type":"auth","token":"Bearer `+token+`"}`), true)); err != nil {
			b.Fatal(err)
		}
		var got []byte
		for !bytes.Contains(got, []byte(`"auth_ok"`)) {
			n, err := nc.Read(buf[:])
			if err != nil {
				b.Fatal(err)
			}
			got = append(got, buf[:n]...)
		}
	}
	return nc
}

func settle() (heap, stack uint64, goroutines int) {
	var ms runtime.MemStats
	for range 5 {
		time.Sleep(20 * time.Millisecond)
		runtime.GC()
	}
	debug.FreeOSMemory()
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse, ms.StackInuse, runtime.NumGoroutine()
}

// BenchmarkIdleConnFootprint measures heap+stack bytes and goroutines per
// idle authenticated connection (one user per connection, tokens valid for
// an hour): each iteration opens one connection; the connections stay open
// until the end, then the process is settled and GC'd several times and
// the growth divided by the number of connections. Each connection needs
// two file descriptors: keep -benchtime=Nx below half of ulimit -n.
func BenchmarkIdleConnFootprint(b *testing.B) {
	for _, mode := range []string{"header", "first_message"} {
		b.Run(mode, func(b *testing.B) {
			e, url := benchEndpoint(b, ws.Config{})
			addr := strings.TrimPrefix(url, "ws://")
			fm := mode == "first_message"
			warm := rawUpgrade(b, addr, "user.warmup..1h", fm)
			defer warm.Close()
			var conns []net.Conn
			defer func() {
				for _, c := range conns {
					_ = c.Close()
				}
			}()
			heap0, stack0, g0 := settle()
			n := 0
			for b.Loop() {
				conns = append(conns, rawUpgrade(b, addr, fmt.Sprintf("user.u%d..1h", n), fm))
				n++
			}
			for e.ActiveConnections() != n+1 {
				time.Sleep(time.Millisecond)
			}
			heap1, stack1, g1 := settle()
			heap, stack := float64(int64(heap1)-int64(heap0)), float64(int64(stack1)-int64(stack0))
			b.ReportMetric((heap+stack)/float64(n), "bytes/conn")
			b.ReportMetric(heap/float64(n), "heap-bytes/conn")
			b.ReportMetric(stack/float64(n), "stack-bytes/conn")
			b.ReportMetric(float64(g1-g0)/float64(n), "goroutines/conn")
		})
	}
}

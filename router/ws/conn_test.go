package ws_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/pkgroute/pkgroute/ratelimit"
	"github.com/pkgroute/pkgroute/router"
	"github.com/pkgroute/pkgroute/router/ws"
	"github.com/pkgroute/pkgroute/router/ws/wstest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func authHeader(tok string) map[string][]string {
	return map[string][]string{"Authorization": {"Bearer " + tok}}
}

func TestCloseCodes(t *testing.T) {
	f := newFixture(t, ws.Config{Authenticator: fakeAuth, MaxMessageSize: 1024})
	tests := []struct {
		name   string
		send   func(c *websocket.Conn) error
		code   int
		reason string
	}{
		{"too big", func(c *websocket.Conn) error {
			return c.WriteMessage(websocket.TextMessage, []byte(`{"pkg_id":10,"data":"`+strings.Repeat("x", 2000)+`"}`))
		}, websocket.CloseMessageTooBig, ""},
		{"invalid utf-8", func(c *websocket.Conn) error {
			return c.WriteMessage(websocket.TextMessage, []byte("{\"pkg_id\":10,\"data\":\"\xff\xfe\"}"))
		}, websocket.CloseInvalidFramePayloadData, "invalid UTF-8"},
		{"binary", func(c *websocket.Conn) error {
			return c.WriteMessage(websocket.BinaryMessage, []byte(`{}`))
		}, websocket.CloseUnsupportedData, "binary frames are not supported"},
		{"peer close 1000 echoed", func(c *websocket.Conn) error {
			return c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "bye"), time.Now().Add(time.Second))
		}, websocket.CloseNormalClosure, ""},
		{"peer close 4500 echoed", func(c *websocket.Conn) error {
			return c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(4500, ""), time.Now().Add(time.Second))
		}, 4500, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.rawDial(authHeader("user.ada"))
			require.NoError(t, tt.send(c))
			expectClose(t, c, tt.code, tt.reason)
		})
	}
	eventually(t, func() bool { return f.e.ActiveConnections() == 0 }, "connections freed")
	for _, code := range []string{"1009", "1007", "1003", "1000", "4500"} {
		assert.Equal(t, 1.0, f.counter("ws_closes_total", "code", code), code)
	}
}

func TestEnvelopeErrorsKeepConnection(t *testing.T) {
	f := newFixture(t, ws.Config{Authenticator: fakeAuth})
	c := f.dial("user.ada")
	for _, raw := range []string{`nope`, `{"pkg_id":10}`, `{"pkg_id":10,"req_id":"00000000-0000-0000-0000-000000000000"}`, `[]`} {
		require.NoError(t, c.Send(ctxT(t), []byte(raw)))
		m, err := c.Next(ctxT(t))
		require.NoError(t, err)
		assert.Equal(t, router.StatusInvalidData, m.StatusCode(), raw)
		assert.Equal(t, "invalid_request", m.Error().Code)
	}
	m, err := c.Call(ctxT(t), 99, nil)
	require.NoError(t, err)
	assert.Equal(t, `{"code":"unknown_package","msg":"No handler found for pkg_id 99","details":null}`, string(m.Data))
	m, err = c.Call(ctxT(t), int64(pkgAdmin), nil)
	require.NoError(t, err)
	assert.Equal(t, router.StatusPermissionDenied, m.StatusCode())
	assert.Equal(t, 6.0, f.counter("ws_messages_received_total"))
	eventually(t, func() bool { return f.counter("ws_messages_sent_total") == 6 }, "sent counted")
}

func TestConcurrentRequests(t *testing.T) {
	f := newFixture(t, ws.Config{Authenticator: fakeAuth, MaxInflight: 16})
	c := f.dial("user.ada")
	var wg sync.WaitGroup
	replies := make([]*wstest.Message, 20)
	errs := make([]error, 20)
	for i := range 20 {
		wg.Go(func() { replies[i], errs[i] = c.Call(ctxT(t), int64(pkgSlow), map[string]int{"i": i}) })
	}
	// 16 run at once; the others wait for a slot, unrefused.
	eventually(t, func() bool { running, _, _ := f.slow.stats(); return running == 16 }, "16 in flight")
	time.Sleep(50 * time.Millisecond)
	running, _, _ := f.slow.stats()
	assert.Equal(t, 16, running)
	close(f.slow.release)
	wg.Wait()
	for i := range 20 {
		require.NoError(t, errs[i])
		assert.Equal(t, router.StatusOK, replies[i].StatusCode())
		assert.JSONEq(t, fmt.Sprintf(`{"i":%d}`, i), string(replies[i].Data))
	}
	_, peak, _ := f.slow.stats()
	assert.Equal(t, 16, peak)
}

func TestDuplicateRequest(t *testing.T) {
	f := newFixture(t, ws.Config{Authenticator: fakeAuth})
	c := f.dial("user.ada")
	id := uuid.New()
	require.NoError(t, c.Send(ctxT(t), []byte(`{"pkg_id":11,"req_id":"`+id.String()+`"}`)))
	<-f.slow.started
	upper := strings.ToUpper(id.String())
	require.NoError(t, c.Send(ctxT(t), []byte(`{"pkg_id":11,"req_id":"`+upper+`"}`)))
	m, err := c.Next(ctxT(t))
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf(`{"pkg_id":11,"req_id":"%s","status_code":1,"meta":null,"data":{"code":"duplicate_request","msg":"req_id %s is already in flight on this connection","details":null}}`, id, id), string(m.Raw))
	close(f.slow.release)
	m, err = c.Next(ctxT(t))
	require.NoError(t, err)
	assert.Equal(t, router.StatusOK, m.StatusCode())
	assert.Equal(t, id, m.ReqID)
	// Once answered, the req_id may be used again.
	m, err = c.CallID(ctxT(t), id, int64(pkgPing), nil)
	require.NoError(t, err)
	assert.Equal(t, router.StatusOK, m.StatusCode())
}

func TestDisconnectCancelsHandlers(t *testing.T) {
	f := newFixture(t, ws.Config{Authenticator: fakeAuth})
	c := f.dial("user.ada")
	for range 3 {
		require.NoError(t, c.Send(ctxT(t), fmt.Appendf(nil, `{"pkg_id":11,"req_id":"%s"}`, uuid.New())))
	}
	for range 3 {
		<-f.slow.started
	}
	require.NoError(t, c.Conn().NetConn().Close()) // vanish without a close frame
	eventually(t, func() bool { _, _, cancelled := f.slow.stats(); return cancelled == 3 }, "handlers cancelled")
	eventually(t, func() bool { return f.e.ActiveConnections() == 0 }, "connection freed")
	eventually(t, func() bool { return f.counter("ws_closes_total", "code", "1006") == 1 }, "counted as 1006")
}

func TestMessageRateLimit(t *testing.T) {
	f := newFixture(t, ws.Config{Authenticator: fakeAuth, MessageRate: ratelimit.PerMinute(5), MaxConsecutiveLimited: 3})
	c := f.dial("user.ada")
	for range 5 {
		m, err := c.Call(ctxT(t), int64(pkgPing), nil)
		require.NoError(t, err)
		require.Equal(t, router.StatusOK, m.StatusCode())
	}
	// The limit is per user: a second connection shares it.
	c2 := f.dial("user.ada")
	m, err := c2.Call(ctxT(t), int64(pkgPing), nil)
	require.NoError(t, err)
	require.Equal(t, router.StatusRateLimited, m.StatusCode())
	m, err = c2.Call(ctxT(t), int64(pkgPing), nil)
	require.NoError(t, err)
	require.Equal(t, router.StatusRateLimited, m.StatusCode())
	e := m.Error()
	assert.Equal(t, "rate_limit_exceeded", e.Code)
	require.NotNil(t, e.RetryAfterMS)
	assert.Greater(t, *e.RetryAfterMS, int64(1000))
	assert.LessOrEqual(t, *e.RetryAfterMS, int64(60000))
	// The third consecutive limited message is answered, then the
	// connection closes with 1008.
	m, err = c2.Call(ctxT(t), int64(pkgPing), nil)
	require.NoError(t, err)
	require.Equal(t, router.StatusRateLimited, m.StatusCode())
	waitClosed(t, c2, websocket.ClosePolicyViolation, "message rate limit exceeded")
	assert.Equal(t, 3.0, f.counter("rate_limit_hits_total", "limit_type", "websocket"))

	// Unlimited with a negative limit.
	g := newFixture(t, ws.Config{Authenticator: fakeAuth, MessageRate: ratelimit.Rate{Limit: -1}})
	c3, err := wstest.Dial(ctxT(t), g.url, "user.ada")
	require.NoError(t, err)
	defer c3.Close()
	for range 150 {
		m, err := c3.Call(ctxT(t), int64(pkgPing), nil)
		require.NoError(t, err)
		require.Equal(t, router.StatusOK, m.StatusCode())
	}
}

// msgWatch is a slog.Handler that closes hit when a record with message
// msg is logged.
type msgWatch struct {
	msg  string
	once sync.Once
	hit  chan struct{}
}

func newMsgWatch(msg string) *msgWatch { return &msgWatch{msg: msg, hit: make(chan struct{})} }

func (w *msgWatch) Enabled(context.Context, slog.Level) bool { return true }
func (w *msgWatch) WithAttrs([]slog.Attr) slog.Handler       { return w }
func (w *msgWatch) WithGroup(string) slog.Handler            { return w }

func (w *msgWatch) Handle(_ context.Context, r slog.Record) error {
	if r.Message == w.msg {
		w.once.Do(func() { close(w.hit) })
	}
	return nil
}

// disconnected returns the disconnected event of the user with principal
// id, or nil.
func (l *eventLog) disconnected(id string) *ws.Event {
	for _, ev := range l.list() {
		if ev.Type == ws.EventDisconnected && ev.Principal.ID == id {
			return &ev
		}
	}
	return nil
}

// A client that stops reading fills the kernel buffers, then the send
// queue: the overflow closes it with 1008 "slow consumer", which it reads
// after the data already written once it reads again.
func TestSlowConsumerQueueOverflow(t *testing.T) {
	var log eventLog
	watch := newMsgWatch("ws: slow consumer")
	f := newFixture(t, ws.Config{Authenticator: fakeAuth, SendQueueBytes: 64 << 10, WriteTimeout: time.Minute,
		OnEvent: log.add, Logger: slog.New(watch)})
	slow := f.rawDial(authHeader("user.ada")) // reads nothing for now
	fast := f.dial("user.bob")
	big := strings.Repeat("x", 16<<10)
	deadline := time.Now().Add(10 * time.Second)
push:
	for {
		select {
		case <-watch.hit:
			break push
		default:
		}
		require.True(t, time.Now().Before(deadline), "the send queue never overflowed")
		require.NoError(t, f.e.PushToUser(ctxT(t), "id-ada", pkgPush, big))
	}
	// The other connection keeps working meanwhile.
	m, err := fast.Call(ctxT(t), int64(pkgPing), nil)
	require.NoError(t, err)
	assert.Equal(t, router.StatusOK, m.StatusCode())

	expectClose(t, slow, websocket.ClosePolicyViolation, "slow consumer")
	eventually(t, func() bool { return f.e.ActiveConnections() == 1 }, "slow connection freed")
	eventually(t, func() bool { return log.disconnected("id-ada") != nil }, "disconnection reported")
	assert.Equal(t, websocket.ClosePolicyViolation, log.disconnected("id-ada").CloseCode)
	assert.Equal(t, 1.0, f.counter("ws_closes_total", "code", "1008"))
}

// A write that cannot finish within WriteTimeout closes with 1008 "slow
// consumer" however roomy the send queue. The close frame cannot reach the
// client (its socket is full and the frame being written is cut short), so
// the server's report is checked, and that the connection is dropped.
func TestSlowConsumerWriteTimeout(t *testing.T) {
	var log eventLog
	f := newFixture(t, ws.Config{Authenticator: fakeAuth, SendQueueBytes: 1 << 30, WriteTimeout: 300 * time.Millisecond,
		OnEvent: log.add})
	slow := f.rawDial(authHeader("user.ada")) // never reads
	fast := f.dial("user.bob")
	big := strings.Repeat("x", 32<<10)
	deadline := time.Now().Add(10 * time.Second)
	for log.disconnected("id-ada") == nil {
		require.True(t, time.Now().Before(deadline), "the slow consumer was never closed")
		require.NoError(t, f.e.PushToUser(ctxT(t), "id-ada", pkgPush, big))
		time.Sleep(time.Millisecond)
	}
	assert.Equal(t, websocket.ClosePolicyViolation, log.disconnected("id-ada").CloseCode)
	assert.Equal(t, 1.0, f.counter("ws_closes_total", "code", "1008"))
	assert.Equal(t, 1, f.e.ActiveConnections(), "slow connection freed")
	m, err := fast.Call(ctxT(t), int64(pkgPing), nil)
	require.NoError(t, err)
	assert.Equal(t, router.StatusOK, m.StatusCode())
	// The server dropped the connection: reading what was written ends.
	_ = slow.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		if _, _, err := slow.ReadMessage(); err != nil {
			assert.False(t, errors.Is(err, os.ErrDeadlineExceeded), "connection still open: %v", err)
			break
		}
	}
}

func TestPush(t *testing.T) {
	f := newFixture(t, ws.Config{Authenticator: fakeAuth})
	ada1 := f.dial("user.ada.admin")
	ada2 := f.dial("user.ada", wstest.FirstMessage())
	bob := f.dial("user.bob.admin~ops")
	eve := f.dial("user.eve")
	all := []*wstest.Client{ada1, ada2, bob, eve}
	ctx := ctxT(t)

	expect := func(c *wstest.Client, data string) {
		t.Helper()
		m, err := c.Next(ctx)
		require.NoError(t, err)
		require.True(t, m.IsPush(), string(m.Raw))
		assert.Equal(t, `{"pkg_id":100,"req_id":"00000000-0000-0000-0000-000000000000","data":`+data+`}`, string(m.Raw))
	}
	require.NoError(t, f.e.PushToUser(ctx, "id-ada", pkgPush, map[string]string{"to": "ada"}))
	expect(ada1, `{"to":"ada"}`)
	expect(ada2, `{"to":"ada"}`)
	require.NoError(t, f.e.PushToRole(ctx, "admin", pkgPush, "admins"))
	expect(ada1, `"admins"`)
	expect(bob, `"admins"`)
	require.NoError(t, f.e.Broadcast(ctx, pkgPush, nil))
	for _, c := range all {
		expect(c, `null`)
	}
	m, err := eve.Call(ctx, int64(pkgPing), nil) // learn nothing; ConnID comes from an admin call
	require.NoError(t, err)
	require.Equal(t, router.StatusOK, m.StatusCode())
	m, err = bob.Call(ctx, int64(pkgAdmin), nil)
	require.NoError(t, err)
	connID := decode(t, m.Data)["conn"].(string)
	require.NoError(t, f.e.PushToConn(ctx, connID, pkgPush, 1))
	expect(bob, `1`)
	// Nobody else got anything more: a final broadcast is everyone's next message.
	require.NoError(t, f.e.Broadcast(ctx, pkgPush, "last"))
	for _, c := range all {
		expect(c, `"last"`)
	}
	assert.Equal(t, 2.0, f.counter("ws_push_total", "scope", "all"))
	assert.Equal(t, 1.0, f.counter("ws_push_total", "scope", "user"))
	assert.Equal(t, 1.0, f.counter("ws_push_total", "scope", "role"))
	assert.Equal(t, 1.0, f.counter("ws_push_total", "scope", "connection"))
}

func TestShutdownDrains(t *testing.T) {
	f := newFixture(t, ws.Config{Authenticator: fakeAuth})
	busy := f.dial("user.ada")
	idle := f.dial("user.bob", wstest.FirstMessage())
	unauthed := f.rawDial(nil)
	reply := make(chan *wstest.Message, 1)
	go func() {
		m, _ := busy.Call(ctxT(t), int64(pkgSlow), map[string]string{"slow": "yes"})
		reply <- m
	}()
	<-f.slow.started

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- f.e.Shutdown(ctx)
	}()
	// While draining: no new requests, no new connections.
	eventually(t, func() bool {
		m, err := idle.Call(ctxT(t), int64(pkgPing), nil)
		return err == nil && m.StatusCode() == router.StatusError && m.Error().Code == "service_unavailable"
	}, "new requests refused while draining")
	select {
	case <-done:
		t.Fatal("Shutdown returned while a request was in flight")
	case <-time.After(100 * time.Millisecond):
	}
	close(f.slow.release)
	m := <-reply
	require.NotNil(t, m, "the in-flight reply is delivered before the close")
	assert.JSONEq(t, `{"slow":"yes"}`, string(m.Data))
	waitClosed(t, busy, websocket.CloseGoingAway, "server shutting down")
	waitClosed(t, idle, websocket.CloseGoingAway, "server shutting down")
	expectClose(t, unauthed, websocket.CloseGoingAway, "server shutting down")
	require.NoError(t, <-done)
	assert.Equal(t, 0, f.e.ActiveConnections())
}

func TestShutdownDeadline(t *testing.T) {
	f := newFixture(t, ws.Config{Authenticator: fakeAuth})
	busy := f.dial("user.ada")
	idle := f.dial("user.bob", wstest.FirstMessage())
	go func() { _, _ = busy.Call(context.Background(), int64(pkgSlow), nil) }()
	<-f.slow.started
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	require.ErrorIs(t, f.e.Shutdown(ctx), context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 2*time.Second)
	_, _, cancelled := f.slow.stats()
	assert.Equal(t, 1, cancelled, "the in-flight handler was cancelled")
	// Past the deadline both are still told why they are closed.
	waitClosed(t, busy, websocket.CloseGoingAway, "server shutting down")
	waitClosed(t, idle, websocket.CloseGoingAway, "server shutting down")
	assert.Equal(t, 2.0, f.counter("ws_closes_total", "code", "1001"))
	assert.Equal(t, 0, f.e.ActiveConnections())
}

func TestKeepalive(t *testing.T) {
	f := newFixture(t, ws.Config{Authenticator: fakeAuth, PingInterval: 50 * time.Millisecond, PongTimeout: 300 * time.Millisecond})
	alive := f.dial("user.ada") // gorilla answers pings while reading
	dead := f.rawDial(authHeader("user.bob"))
	dead.SetPingHandler(func(string) error { return nil }) // never pongs
	go func() {
		for {
			if _, _, err := dead.ReadMessage(); err != nil {
				return
			}
		}
	}()
	eventually(t, func() bool { return f.counter("ws_closes_total", "code", "1006") == 1 }, "dead peer dropped")
	time.Sleep(400 * time.Millisecond) // several ping rounds for the live one
	m, err := alive.Call(ctxT(t), int64(pkgPing), nil)
	require.NoError(t, err)
	assert.Equal(t, router.StatusOK, m.StatusCode())
	assert.Equal(t, 1, f.e.ActiveConnections())
}

func TestLargeReplyFitsEmptyQueue(t *testing.T) {
	f := newFixture(t, ws.Config{Authenticator: fakeAuth, SendQueueBytes: 1024})
	c := f.dial("user.ada")
	big := strings.Repeat("x", 8<<10)
	m, err := c.Call(ctxT(t), int64(pkgPing), map[string]string{"big": big})
	require.NoError(t, err)
	assert.Equal(t, router.StatusOK, m.StatusCode())
	assert.Len(t, m.Data, len(big)+10)
}

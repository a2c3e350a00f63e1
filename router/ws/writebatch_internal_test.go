package ws

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/ratelimit"
	"github.com/pkgroute/pkgroute/router"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countConn counts the write calls made on a server connection.
type countConn struct {
	net.Conn
	writes atomic.Int32
}

func (c *countConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

type countListener struct {
	net.Listener
	conns chan *countConn
}

func (l *countListener) Accept() (net.Conn, error) {
	nc, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &countConn{Conn: nc}
	l.conns <- cc
	return cc, nil
}

// batchServer serves an echo package (1) on a loopback server whose
// connections count their writes. Inline serves are never handed over, so
// that a loaded machine does not change how replies are written.
func batchServer(t *testing.T) (string, chan *countConn) {
	_, url, conns := batchEndpoint(t)
	return url, conns
}

func batchEndpoint(t *testing.T) (*Endpoint[int32], string, chan *countConn) {
	r := router.New[int32](router.Config{})
	r.Register(1, router.HandlerFunc[int32](func(_ context.Context, req *router.Request[int32]) router.Response {
		return router.Response{Data: req.Data}
	}), router.Authenticated())
	e := New(r, Config{
		Authenticator: auth.AuthenticatorFunc(func(context.Context, string) (*auth.Principal, error) {
			return &auth.Principal{ID: "u", Username: "ada"}, nil
		}),
		MessageRate: ratelimit.Rate{Limit: -1},
	})
	e.watch.stop()
	e.watch = newInlineWatch(time.Hour)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	cl := &countListener{Listener: ln, conns: make(chan *countConn, 16)}
	srv := httptest.NewUnstartedServer(e)
	srv.Listener = cl
	srv.Start()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		assert.NoError(t, e.Shutdown(ctx))
		srv.Close()
	})
	return e, "ws" + strings.TrimPrefix(srv.URL, "http"), cl.conns
}

// maskedText is a client text frame (mask key zero) carrying payload.
func maskedText(payload string) []byte {
	f := []byte{0x81}
	switch n := len(payload); {
	case n < 126:
		f = append(f, 0x80|byte(n))
	default:
		f = append(f, 0x80|126)
		f = binary.BigEndian.AppendUint16(f, uint16(n))
	}
	f = append(f, 0, 0, 0, 0)
	return append(f, payload...)
}

func echoReq(i int) string {
	return fmt.Sprintf(`{"pkg_id":1,"req_id":"00000000-0000-4000-8000-%012d","data":{"n":%d}}`, i+1, i)
}

func dialBatch(t *testing.T, url string, conns chan *countConn) (*websocket.Conn, *countConn) {
	c, _, err := websocket.DefaultDialer.Dial(url, http.Header{"Authorization": {"Bearer t"}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.SetReadDeadline(time.Now().Add(time.Minute)))
	return c, <-conns
}

func readReplies(t *testing.T, c *websocket.Conn, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		mt, msg, err := c.ReadMessage()
		require.NoError(t, err)
		assert.Equal(t, websocket.TextMessage, mt)
		assert.Contains(t, string(msg), fmt.Sprintf(`"req_id":"00000000-0000-4000-8000-%012d"`, i+1), "each reply is its own message, in order")
		assert.Contains(t, string(msg), fmt.Sprintf(`"data":{"n":%d}`, i))
	}
}

// TestPipelinedRepliesShareOneWrite sends four requests in one write: their
// replies leave in one write system call, each still its own message.
func TestPipelinedRepliesShareOneWrite(t *testing.T) {
	url, conns := batchServer(t)
	c, cc := dialBatch(t, url, conns)
	before := cc.writes.Load() // the 101 answer

	var batch []byte
	for i := range 4 {
		batch = append(batch, maskedText(echoReq(i))...)
	}
	_, err := c.NetConn().Write(batch)
	require.NoError(t, err)
	readReplies(t, c, 0, 4)
	assert.Equal(t, int32(1), cc.writes.Load()-before, "writes for four pipelined replies")
}

// TestLoneReplyIsWrittenAtOnce: a reply with nothing behind it is written
// when it is ready, not held for a request that does not come.
func TestLoneReplyIsWrittenAtOnce(t *testing.T) {
	url, conns := batchServer(t)
	c, cc := dialBatch(t, url, conns)
	before := cc.writes.Load()
	for i := range 3 {
		require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte(echoReq(i))))
		readReplies(t, c, i, i+1)
	}
	assert.Equal(t, int32(3), cc.writes.Load()-before, "one write per reply")
}

// TestHeldRepliesWaitForNoPartialRequest: a request of which only a part
// arrived does not hold back the replies before it.
func TestHeldRepliesWaitForNoPartialRequest(t *testing.T) {
	url, conns := batchServer(t)
	c, _ := dialBatch(t, url, conns)
	var batch []byte
	for i := range 3 {
		batch = append(batch, maskedText(echoReq(i))...)
	}
	last := maskedText(echoReq(3))
	_, err := c.NetConn().Write(append(batch, last[:10]...))
	require.NoError(t, err)
	readReplies(t, c, 0, 3)
	_, err = c.NetConn().Write(last[10:])
	require.NoError(t, err)
	readReplies(t, c, 3, 4)
}

// TestManyPipelinedReplies sends more pipelined requests than fit in a read
// buffer, with replies larger than maxHeld in total: every reply arrives, in
// order, in fewer writes than replies.
func TestManyPipelinedReplies(t *testing.T) {
	url, conns := batchServer(t)
	c, cc := dialBatch(t, url, conns)
	before := cc.writes.Load()
	const n = 300
	var batch []byte
	for i := range n {
		batch = append(batch, maskedText(echoReq(i))...)
	}
	go func() { _, _ = c.NetConn().Write(batch) }()
	readReplies(t, c, 0, n)
	assert.Less(t, cc.writes.Load()-before, int32(n))
}

// TestIdleConnectionHasNoWriter: the writer goroutine runs while there is
// something to write (a reply queued behind another, a push, the close)
// and exits afterwards; an idle connection keeps its reader only.
func TestIdleConnectionHasNoWriter(t *testing.T) {
	e, url, conns := batchEndpoint(t)
	c, _ := dialBatch(t, url, conns)
	var cn *conn[int32]
	e.mu.RLock()
	for _, x := range e.conns {
		cn = x
	}
	e.mu.RUnlock()
	require.NotNil(t, cn)
	idle := func() bool { return cn.writer.Load() == writerIdle }

	require.NoError(t, c.WriteMessage(websocket.TextMessage, []byte(echoReq(0))))
	readReplies(t, c, 0, 1)
	require.Eventually(t, idle, time.Minute, time.Millisecond)

	for i := range 3 {
		require.NoError(t, e.PushToConn(context.Background(), cn.id, 1, map[string]int{"push": i}))
	}
	for i := range 3 {
		_, msg, err := c.ReadMessage()
		require.NoError(t, err)
		assert.Contains(t, string(msg), fmt.Sprintf(`{"push":%d}`, i))
	}
	require.Eventually(t, idle, time.Minute, time.Millisecond)

	require.NoError(t, c.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(time.Minute)))
	<-cn.done
	assert.Equal(t, writerDone, cn.writer.Load())
}

package ws

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/ratelimit"
	"github.com/pkgroute/pkgroute/router"
)

// Close codes of docs/protocol.md section 1.6 that gorilla/websocket has no
// name for, and the reasons the contract fixes.
const (
	CloseUnauthorized = 4001
	CloseAuthTimeout  = 4002
	CloseTokenExpired = 4003

	closeAbnormal = websocket.CloseAbnormalClosure // no close frame: counted as 1006

	reasonUnauthorized = "unauthorized"
	reasonAuthTimeout  = "auth timeout"
	reasonExpired      = "token expired"
	reasonConnLimit    = "maximum concurrent connections exceeded"
	reasonSlowConsumer = "slow consumer"
	reasonRateAbuse    = "message rate limit exceeded"
	reasonShutdown     = "server shutting down"
)

// conn is one WebSocket connection: a reader goroutine (auth, requests),
// a writer goroutine while there is something to write (send queue, the
// close handshake) and a ping timer.
type conn[T router.ID] struct {
	e         *Endpoint[T]
	id        string
	ws        *websocket.Conn
	nc        net.Conn
	principal atomic.Pointer[auth.Principal]
	ctx       context.Context // parent of request contexts; cancelled when closing starts
	cancel    context.CancelFunc

	q sendQueue // outgoing messages, the writing state and the close

	mu          sync.Mutex
	inflight    map[uuid.UUID]struct{}
	expiry      *time.Timer
	ping        *time.Timer // runs pingPeer
	pingStopped bool
	accepted    bool   // authenticated and counted as active
	limitKey    string // the message limiter's key, "ws:<user>"
	slot        bool   // holds a connection slot

	awaitingPong atomic.Bool
	consecutive  int              // consecutive rate-limited messages (reader only)
	bucket       ratelimit.Bucket // ConnMessageRate (reader only)

	reads      uint64 // data messages read (reader only)
	held       int    // bytes of replies queued by the reader without waking the writer (reader only)
	handoffFn  func() // c.handoff, bound once
	watchShard uint32
	writer     atomic.Int32 // writerNone, writerIdle, writerRunning, writerDone
	kick       atomic.Bool  // work signalled to the writer
	readerDone chan struct{}
	done       chan struct{} // closed when the connection is finished
	sem        chan struct{} // in-flight request slots
	handlers   sync.WaitGroup
}

// requestClose starts closing the connection, unless it is already
// closing. It never blocks.
func (c *conn[T]) requestClose(cr closeReq) bool {
	if !c.q.close(cr) {
		return false
	}
	c.cancel()
	c.signal()
	return true
}

// forceClose replaces a pending flushing close (the queue can no longer be
// written) or starts one. It reports whether cr is now the connection's
// close.
func (c *conn[T]) forceClose(cr closeReq) bool {
	set := c.q.force(cr)
	c.cancel()
	c.signal()
	return set
}

// writeClose writes the close frame of cr by deadline, if the connection
// is upgraded and no close frame was sent yet. It is safe while the writer
// or a request goroutine is writing: control frames may come between the
// frames of a message.
func (c *conn[T]) writeClose(cr closeReq, deadline time.Time) {
	c.mu.Lock()
	ws := c.ws
	c.mu.Unlock()
	if ws != nil {
		_ = ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(cr.code, cr.reason), deadline)
	}
}

// abort drops the network connection, if there is one yet.
func (c *conn[T]) abort() {
	c.mu.Lock()
	nc := c.nc
	c.mu.Unlock()
	if nc != nil {
		_ = nc.Close()
	}
}

func (c *conn[T]) isClosing() bool { return c.q.isClosing() }

// watchConn returns the network connection as the upgrader hijacked it, nil
// before the upgrade.
func (c *conn[T]) watchConn() *closeWatch {
	cw, _ := c.nc.(*closeWatch)
	return cw
}

// finish releases everything the connection holds.
func (c *conn[T]) finish() {
	c.cancel()
	c.handlers.Wait()
	c.mu.Lock()
	if c.expiry != nil {
		c.expiry.Stop()
	}
	c.pingStopped = true
	if c.ping != nil {
		c.ping.Stop()
	}
	slot, accepted := c.slot, c.accepted
	c.inflight = nil
	c.mu.Unlock()
	code, ok := c.q.closeCode()
	if !ok {
		code = closeAbnormal
	}
	c.q.drop()
	c.e.remove(c, accepted)
	if accepted && c.e.cfg.OnEvent != nil {
		c.e.cfg.OnEvent(c.ctx, Event{Type: EventDisconnected, ConnID: c.id, Principal: c.principal.Load(), CloseCode: code})
	}
	if slot {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(c.ctx), 5*time.Second)
		if err := c.e.cfg.Connections.Release(ctx, userKey(c.principal.Load()), c.id); err != nil {
			c.e.flog.Error("ws: release connection slot", "error", err)
		}
		cancel()
	}
	close(c.done)
	c.e.wg.Done()
}

package ws

import (
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/pkgroute/pkgroute/router"
)

// enqueue queues msg for the writer. A message that does not fit in the
// queue's remaining room closes the connection with 1008 "slow consumer"
// (a single message larger than the whole queue is accepted into an empty
// queue). It never blocks.
func (c *conn[T]) enqueue(msg []byte) bool {
	switch c.q.push(msg, c.e.cfg.SendQueueBytes) {
	case pushOverflow:
		c.e.flog.Info("ws: slow consumer", "conn_id", c.id)
		c.requestClose(closeReq{code: websocket.ClosePolicyViolation, reason: reasonSlowConsumer, frame: true})
		return false
	case pushClosing:
		return false
	}
	c.signal()
	return true
}

// send writes msg from the calling request goroutine when nothing else is
// queued or being written (saving a hand-over to the writer), else queues
// it.
func (c *conn[T]) send(msg []byte) {
	if !c.q.acquire(len(msg), true) {
		c.enqueue(msg)
		return
	}
	c.sendHeld(msg)
}

// sendHeld writes msg, for which the caller acquired the writing state,
// then releases it.
func (c *conn[T]) sendHeld(msg []byte) {
	err := c.writeMsg(msg)
	more := c.q.release(len(msg))
	if err != nil {
		c.writeFailed(err)
		return
	}
	if more {
		c.signal()
	}
}

func (c *conn[T]) writeMsg(msg []byte) error {
	_ = c.ws.SetWriteDeadline(time.Now().Add(c.e.cfg.WriteTimeout))
	if err := c.ws.WriteMessage(websocket.TextMessage, msg); err != nil {
		return err
	}
	c.e.metrics.sentN(1)
	return nil
}

// reply sends a reply made by the endpoint itself.
func (c *conn[T]) reply(h head, resp router.Response) {
	pkg := T(h.pkgID)
	if int64(pkg) != h.pkgID {
		pkg = 0
	}
	var id uuid.UUID
	if h.hasReqID {
		id = h.reqID
	}
	c.send(c.e.r.Encode(pkg, id, resp))
}

// write is the writer goroutine: it owns every data frame, the pings and
// the close handshake, and cleans up when both goroutines are done.
func (c *conn[T]) write() {
	var ping *time.Timer
	var pingC <-chan time.Time
	authed, readerDone := c.authed, c.readerDone
	for {
		select {
		case <-c.wake:
		case <-authed:
			authed = nil
			ping = time.NewTimer(c.e.cfg.PingInterval)
			pingC = ping.C
			continue
		case <-pingC:
			now := time.Now()
			if !c.awaitingPong.Swap(true) {
				_ = c.ws.SetReadDeadline(now.Add(c.e.cfg.PongTimeout))
			}
			if err := c.ws.WriteControl(websocket.PingMessage, nil, now.Add(c.e.cfg.WriteTimeout)); err != nil {
				c.writeFailed(err)
			}
			ping.Reset(c.e.cfg.PingInterval)
		case <-readerDone:
			readerDone = nil
			c.requestClose(closeReq{code: closeAbnormal})
		}
		if c.flush() {
			break
		}
	}
	if ping != nil {
		ping.Stop()
	}
	c.finish()
}

// flush writes the queue and, once a close was requested, the close frame.
// It returns true when the connection is finished.
func (c *conn[T]) flush() bool {
	var cr *closeReq
	for {
		msgs, closing, busy := c.q.take(1)
		cr = closing
		if busy {
			return false // a request goroutine is writing; it signals when done
		}
		if len(msgs) == 0 {
			break
		}
		err := c.writeMsg(msgs[0])
		c.q.done(msgs)
		if err != nil {
			c.writeFailed(err)
		}
	}
	if cr == nil {
		return false
	}
	c.e.metrics.closed(cr.code)
	if cr.frame {
		msg := websocket.FormatCloseMessage(cr.code, cr.reason)
		_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(c.e.cfg.CloseGrace))
	}
	t := time.NewTimer(c.e.cfg.CloseGrace)
	select {
	case <-c.readerDone:
	case <-t.C:
	}
	t.Stop()
	_ = c.nc.Close()
	<-c.readerDone
	return true
}

func (c *conn[T]) writeFailed(err error) {
	if isTimeout(err) {
		c.e.flog.Info("ws: slow consumer", "conn_id", c.id)
		c.forceClose(closeReq{code: websocket.ClosePolicyViolation, reason: reasonSlowConsumer, frame: true})
		return
	}
	c.forceClose(closeReq{code: closeAbnormal})
}

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
	if !c.enqueueQuiet(msg) {
		return false
	}
	c.signal()
	return true
}

// enqueueQuiet is enqueue without waking the writer.
func (c *conn[T]) enqueueQuiet(msg []byte) bool {
	switch c.q.push(msg, c.e.cfg.SendQueueBytes) {
	case pushOverflow:
		c.e.flog.Info("ws: slow consumer", "conn_id", c.id)
		c.requestClose(closeReq{code: websocket.ClosePolicyViolation, reason: reasonSlowConsumer, frame: true})
		return false
	case pushClosing:
		return false
	}
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

// writeMsgs writes msgs, each its own message, in one write system call
// when there are several (at most maxBatch bytes a call).
func (c *conn[T]) writeMsgs(msgs [][]byte) error {
	cw := c.watchConn()
	if len(msgs) == 1 || cw == nil {
		for _, m := range msgs {
			if err := c.writeMsg(m); err != nil {
				return err
			}
		}
		return nil
	}
	deadline := time.Now().Add(c.e.cfg.WriteTimeout)
	_ = c.ws.SetWriteDeadline(deadline)
	bp, _ := c.e.batches.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	cw.gather(*bp, deadline)
	var err error
	for _, m := range msgs {
		if err = c.ws.WriteMessage(websocket.TextMessage, m); err != nil {
			break
		}
	}
	buf, ferr := cw.flush()
	if cap(buf) <= maxBatch {
		*bp = buf[:0]
		c.e.batches.Put(bp)
	}
	if err == nil {
		err = ferr
	}
	if err != nil {
		return err
	}
	c.e.metrics.sentN(len(msgs))
	return nil
}

// hold queues a reply of the reader's own without waking the writer: the
// reader writes it with the replies that follow (writeHeld), or wakes the
// writer before it may wait (releaseHeld). Past maxHeld bytes it writes
// what it holds.
func (c *conn[T]) hold(msg []byte) {
	if !c.enqueueQuiet(msg) {
		return
	}
	c.held += len(msg)
	if c.held >= maxHeld {
		c.writeHeld()
	}
}

// maxHeld bounds the bytes of replies the reader holds back.
const maxHeld = 16 << 10

// writeHeld writes the queue from the reader, in one write when it can;
// when another goroutine is writing, that goroutine wakes the writer when
// done.
func (c *conn[T]) writeHeld() {
	c.held = 0
	msgs, _, busy := c.q.take(0)
	if busy || len(msgs) == 0 {
		c.signal()
		return
	}
	err := c.writeMsgs(msgs)
	more := c.q.done(msgs)
	if err != nil {
		c.writeFailed(err)
		return
	}
	if more {
		c.signal()
	}
}

// releaseHeld hands the replies the reader holds to the writer.
func (c *conn[T]) releaseHeld() {
	if c.held > 0 {
		c.held = 0
		c.signal()
	}
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

// States of a connection's writer goroutine.
const (
	writerNone    int32 = iota // not upgraded yet: nothing can be written
	writerIdle                 // no writer goroutine: nothing to write
	writerRunning              // a writer goroutine runs
	writerDone                 // the connection is finished
)

// startWriter lets the writer run once the connection is upgraded, at once
// when work was signalled before.
func (c *conn[T]) startWriter() {
	c.writer.Store(writerIdle)
	if c.kick.Load() {
		c.signal()
	}
}

// signal tells the writer that there is work: queued messages or a close.
// It starts a writer goroutine when none runs. An idle connection has no
// writer goroutine, only its reader.
func (c *conn[T]) signal() {
	c.kick.Store(true)
	if c.writer.CompareAndSwap(writerIdle, writerRunning) {
		go c.write()
	}
}

// write is the writer goroutine, which runs while there is work: it writes
// the queue and the close handshake, and cleans up once the connection is
// closed. It exits when the queue is empty and no close is pending; signal
// starts it again.
func (c *conn[T]) write() {
	for {
		c.kick.Store(false)
		if c.flush() {
			c.writer.Store(writerDone)
			c.finish()
			return
		}
		c.writer.Store(writerIdle)
		// Work signalled after the flush looked finds the writer idle and
		// starts another, or finds it still running and is seen here.
		if !c.kick.Load() || !c.writer.CompareAndSwap(writerIdle, writerRunning) {
			return
		}
	}
}

// startPings arms the ping timer (once the connection is authenticated).
func (c *conn[T]) startPings() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ping == nil && !c.pingStopped {
		c.ping = time.AfterFunc(c.e.cfg.PingInterval, c.pingPeer)
	}
}

// pingPeer sends a ping and expects its pong within PongTimeout; it runs
// on the ping timer's own goroutine (WriteControl may be called alongside
// the other writes).
func (c *conn[T]) pingPeer() {
	if c.isClosing() {
		return
	}
	now := time.Now()
	if !c.awaitingPong.Swap(true) {
		_ = c.ws.SetReadDeadline(now.Add(c.e.cfg.PongTimeout))
	}
	if err := c.ws.WriteControl(websocket.PingMessage, nil, now.Add(c.e.cfg.WriteTimeout)); err != nil {
		c.writeFailed(err)
		return
	}
	c.mu.Lock()
	if !c.pingStopped {
		c.ping.Reset(c.e.cfg.PingInterval)
	}
	c.mu.Unlock()
}

// flush writes the queue and, once a close was requested, the close frame.
// It returns true when the connection is finished.
func (c *conn[T]) flush() bool {
	var cr *closeReq
	for {
		msgs, closing, busy := c.q.take(0)
		cr = closing
		if busy {
			return false // a request goroutine is writing; it signals when done
		}
		if len(msgs) == 0 {
			break
		}
		err := c.writeMsgs(msgs)
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

package ws

import (
	"errors"
	"io"
	"net"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/ratelimit"
	"github.com/pkgroute/pkgroute/router"
)

// read is the reader goroutine.
func (c *conn[T]) read(firstMessage bool) {
	if !firstMessage {
		c.readLoop()
		return
	}
	if !c.authenticate() {
		c.readerExit()
		return
	}
	// Verifying a token can grow a goroutine's stack a lot; an idle
	// connection's reader starts afresh instead of keeping that stack.
	go c.readLoop()
}

// readLoop reads requests and serves each on the goroutine that read it,
// which saves a hand-over per request. When a request takes longer than
// handoffDelay, the reading is handed over to another goroutine (see
// serveInline), so that a slow handler neither stops the connection's
// reading nor the other requests: the connection always has exactly one
// reader, plus one goroutine per slow request in flight.
func (c *conn[T]) readLoop() {
	for {
		mt, data, err := c.ws.ReadMessage()
		if err != nil {
			c.readFailed(err)
			break
		}
		c.reads++
		if c.isClosing() || c.checkFrame(mt, data) != 0 {
			c.discard()
			break
		}
		h, serve, ok := c.handle(data)
		if !ok {
			c.discard()
			break
		}
		if serve && !c.serveInline(data, h) {
			return // another goroutine reads now
		}
	}
	c.readerExit()
}

// readerExit ends the reading: the connection closes (as 1006 unless a
// close was decided before).
func (c *conn[T]) readerExit() {
	close(c.readerDone)
	c.requestClose(closeReq{code: closeAbnormal})
}

// serveInline serves a request on the reader goroutine and reports whether
// this goroutine is still the reader.
func (c *conn[T]) serveInline(data []byte, h head) bool {
	return c.serve(data, h, c.e.watch.begin(c.watchShard, c.handoffFn))
}

// handoff starts a new reader in place of one whose inline serve runs
// long; the replies that reader held are written meanwhile.
func (c *conn[T]) handoff() {
	c.signal()
	c.readLoop()
}

// pipelined reports whether the peer's next request was received whole:
// the reader's next read does not wait.
func (c *conn[T]) pipelined() bool {
	cw := c.watchConn()
	return cw != nil && cw.buffered(c.reads)
}

// checkFrame closes with 1003 for binary frames and 1007 for invalid
// UTF-8, and returns that close code (0 for a valid text frame).
func (c *conn[T]) checkFrame(mt int, data []byte) int {
	var cr closeReq
	switch {
	case mt != websocket.TextMessage:
		cr = closeReq{code: websocket.CloseUnsupportedData, reason: "binary frames are not supported", frame: true}
	case !utf8.Valid(data):
		cr = closeReq{code: websocket.CloseInvalidFramePayloadData, reason: "invalid UTF-8", frame: true}
	default:
		return 0
	}
	c.requestClose(cr)
	return cr.code
}

// readFailed closes after a read error and drains what the peer still
// sends, so that the close frame is not lost to a TCP reset.
func (c *conn[T]) readFailed(err error) {
	var ce *websocket.CloseError
	switch {
	case errors.As(err, &ce) && ce.Code == websocket.CloseNoStatusReceived && oneByteClose(c.nc):
		// gorilla reads a one-byte close payload as no status; it is a
		// protocol error (RFC 6455 §5.5.1).
		c.requestClose(closeReq{code: websocket.CloseProtocolError, reason: "invalid close payload", frame: true})
	case errors.As(err, &ce):
		// The peer's close: echo its code.
		c.requestClose(closeReq{code: ce.Code, frame: true})
		return
	case errors.Is(err, websocket.ErrReadLimit):
		c.requestClose(closeReq{code: websocket.CloseMessageTooBig}) // gorilla sent 1009
	case isNetError(err):
		c.requestClose(closeReq{code: closeAbnormal})
		return
	default: // a protocol error; gorilla sent 1002
		c.requestClose(closeReq{code: websocket.CloseProtocolError})
	}
	c.drainRaw()
}

// discard reads and drops messages until the peer's close frame or an
// error.
func (c *conn[T]) discard() {
	for {
		_, r, err := c.ws.NextReader()
		if err != nil {
			var ce *websocket.CloseError
			if !errors.As(err, &ce) && !isNetError(err) {
				c.drainRaw()
			}
			return
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			return
		}
	}
}

// drainRaw reads the raw connection until the peer closes it or the close
// grace passes.
func (c *conn[T]) drainRaw() {
	_ = c.nc.SetReadDeadline(time.Now().Add(c.e.cfg.CloseGrace))
	var buf [256]byte
	for {
		if _, err := c.nc.Read(buf[:]); err != nil {
			return
		}
	}
}

func isNetError(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.As(err, &ne)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// limited answers a message refused by a message limit and closes the
// connection after too many in a row. It returns false when the connection
// is closing.
func (c *conn[T]) limited(h head, retry time.Duration) bool {
	e := c.e
	e.cfg.LimitMetrics.Hit(ratelimit.LimitWebSocket)
	if e.cfg.OnEvent != nil {
		e.cfg.OnEvent(c.ctx, Event{Type: EventRateLimited, ConnID: c.id, Principal: c.principal.Load(), PkgID: h.pkgID})
	}
	re := router.NewError(router.StatusRateLimited, router.CodeRateLimitExceeded, "Message rate limit exceeded")
	re.Retry = retry
	c.reply(h, router.Fail(re))
	c.consecutive++
	if max := e.cfg.MaxConsecutiveLimited; max > 0 && c.consecutive >= max {
		c.requestClose(closeReq{code: websocket.ClosePolicyViolation, reason: reasonRateAbuse, flush: true, frame: true})
		return false
	}
	return true
}

// handle processes one text message of an authenticated connection. serve
// reports a request that took an in-flight slot and must be served; ok is
// false when the connection is closing.
func (c *conn[T]) handle(data []byte) (h head, serve, ok bool) {
	e := c.e
	h = scanHead(data)
	if c.held > 0 && (h.isAuth || e.limitOn) {
		c.releaseHeld() // verifying a token or a remote limit may take a while
	}
	if h.isAuth {
		return h, false, c.reauth(data)
	}
	e.metrics.recv()
	if e.bucketOn {
		if allowed, retry := c.bucket.Take(time.Now()); !allowed {
			return h, false, c.limited(h, retry)
		}
	}
	if e.limitOn {
		res, err := e.cfg.Limiter.Allow(c.ctx, c.limitKey, e.cfg.MessageRate)
		switch {
		case err != nil:
			e.flog.Error("ws: message limiter failed", "error", err)
			c.reply(h, router.Fail(err))
			return h, false, true
		case !res.Allowed:
			return h, false, c.limited(h, res.RetryAfter)
		}
	}
	c.consecutive = 0
	// Counted in flight before the drain check, so that Shutdown either
	// waits for this request or this request sees the drain.
	e.inflight.Add(1)
	if e.isDraining() {
		e.inflight.Add(-1)
		ue := router.NewError(router.StatusError, router.CodeServiceUnavailable, "The server is shutting down")
		ue.Retry = time.Second
		c.reply(h, router.Fail(ue))
		return h, false, true
	}
	if h.hasReqID {
		c.mu.Lock()
		if _, dup := c.inflight[h.reqID]; dup {
			c.mu.Unlock()
			e.inflight.Add(-1)
			c.reply(h, router.Fail(router.NewError(router.StatusError, router.CodeDuplicateRequest,
				"req_id "+h.reqID.String()+" is already in flight on this connection")))
			return h, false, true
		}
		if c.inflight == nil {
			c.inflight = make(map[uuid.UUID]struct{})
		}
		c.inflight[h.reqID] = struct{}{}
		c.mu.Unlock()
	}
	select {
	case c.sem <- struct{}{}:
	default:
		// Every slot is taken: stop reading until one frees.
		c.releaseHeld()
		select {
		case c.sem <- struct{}{}:
		case <-c.ctx.Done():
			e.inflight.Add(-1)
			return h, false, false
		}
		if c.awaitingPong.Load() {
			// A pong may have arrived unread meanwhile: give it time to
			// be read before the peer counts as dead.
			_ = c.ws.SetReadDeadline(time.Now().Add(e.cfg.PongTimeout))
		}
	}
	c.handlers.Add(1)
	return h, true, true
}

// serve runs one request in flight and releases its slot.
func (c *conn[T]) serve(data []byte, h head, s *inlineServe) (reader bool) {
	defer func() {
		<-c.sem
		c.e.inflight.Add(-1)
		c.handlers.Done()
	}()
	p := c.principal.Load()
	pkg, reqID, resp := c.e.r.DispatchResponse(auth.NewContext(c.ctx, p), p, data)
	out := c.e.r.Encode(pkg, reqID, resp)
	if h.hasReqID {
		c.mu.Lock()
		delete(c.inflight, h.reqID)
		c.mu.Unlock()
	}
	reader = c.e.watch.end(s)
	switch {
	case !reader:
		c.send(out)
	case c.pipelined():
		// The next request is here already: its reply may leave in the
		// same write as this one.
		c.hold(out)
	case c.held > 0:
		c.hold(out)
		c.writeHeld()
	default:
		c.send(out)
	}
	return reader
}

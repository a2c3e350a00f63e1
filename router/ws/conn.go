package ws

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/internal/errkind"
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

// closeReq is a decision to close a connection.
type closeReq struct {
	code   int
	reason string
	flush  bool // write the queued messages before the close frame
	frame  bool // send a close frame (false: already sent, or the peer is gone)
}

// conn is one WebSocket connection: a reader goroutine (auth, requests)
// and a writer goroutine (send queue, pings, the close handshake).
type conn[T router.ID] struct {
	e         *Endpoint[T]
	id        string
	ws        *websocket.Conn
	nc        net.Conn
	principal atomic.Pointer[auth.Principal]
	ctx       context.Context // parent of request contexts; cancelled when closing starts
	cancel    context.CancelFunc

	mu       sync.Mutex
	queue    [][]byte
	queued   int  // bytes in queue and being written
	writing  bool // a goroutine is writing a data frame
	closing  *closeReq
	inflight map[uuid.UUID]struct{}
	expiry   *time.Timer
	accepted bool   // authenticated and counted as active
	limitKey string // the message limiter's key, "ws:<user>"
	slot     bool   // holds a connection slot

	awaitingPong atomic.Bool
	consecutive  int              // consecutive rate-limited messages (reader only)
	bucket       ratelimit.Bucket // ConnMessageRate (reader only)

	handoffFn  func() // c.readLoop, bound once
	watchShard uint32
	wake       chan struct{} // wakes the writer
	authed     chan struct{} // closed once authenticated: starts pings
	readerDone chan struct{}
	done       chan struct{} // closed when both goroutines have finished
	sem        chan struct{} // in-flight request slots
	handlers   sync.WaitGroup
}

func (c *conn[T]) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// requestClose starts closing the connection, unless it is already
// closing. It never blocks.
func (c *conn[T]) requestClose(cr closeReq) bool {
	c.mu.Lock()
	if c.closing != nil {
		c.mu.Unlock()
		return false
	}
	c.closing = &cr
	c.mu.Unlock()
	c.cancel()
	c.signal()
	return true
}

// forceClose replaces a pending flushing close (the queue can no longer be
// written) or starts one. It reports whether cr is now the connection's
// close.
func (c *conn[T]) forceClose(cr closeReq) bool {
	c.mu.Lock()
	set := c.closing == nil || c.closing.flush
	if set {
		c.closing = &cr
	}
	c.mu.Unlock()
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

func (c *conn[T]) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing != nil
}

// enqueue queues msg for the writer. A message that does not fit in the
// queue's remaining room closes the connection with 1008 "slow consumer"
// (a single message larger than the whole queue is accepted into an empty
// queue). It never blocks.
func (c *conn[T]) enqueue(msg []byte) bool {
	c.mu.Lock()
	if c.closing != nil {
		c.mu.Unlock()
		return false
	}
	if c.queued > 0 && c.queued+len(msg) > c.e.cfg.SendQueueBytes {
		c.mu.Unlock()
		c.e.flog.Info("ws: slow consumer", "conn_id", c.id)
		c.requestClose(closeReq{code: websocket.ClosePolicyViolation, reason: reasonSlowConsumer, frame: true})
		return false
	}
	c.queue = append(c.queue, msg)
	c.queued += len(msg)
	c.mu.Unlock()
	c.signal()
	return true
}

// accept marks the connection authenticated as p.
func (c *conn[T]) accept(p *auth.Principal) {
	c.principal.Store(p)
	c.armExpiry(p)
	c.mu.Lock()
	c.accepted = true
	c.limitKey = "ws:" + userKey(p)
	if c.e.bucketOn {
		c.bucket = ratelimit.NewBucket(c.e.cfg.ConnMessageRate)
	}
	c.mu.Unlock()
	c.e.accepted(c)
}

func (c *conn[T]) armExpiry(p *auth.Principal) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p.ExpiresAt.IsZero() {
		if c.expiry != nil {
			c.expiry.Stop()
		}
		return
	}
	d := time.Until(p.ExpiresAt.Add(c.e.cfg.ExpiryLeeway))
	if c.expiry == nil {
		c.expiry = time.AfterFunc(d, c.expired)
	} else {
		c.expiry.Reset(d)
	}
}

func (c *conn[T]) expired() {
	p := c.principal.Load()
	if p == nil || p.ExpiresAt.IsZero() || time.Now().Before(p.ExpiresAt.Add(c.e.cfg.ExpiryLeeway)) {
		return // refreshed meanwhile
	}
	c.requestClose(closeReq{code: CloseTokenExpired, reason: reasonExpired, flush: true, frame: true})
}

// read is the reader goroutine.
func (c *conn[T]) read(firstMessage bool) {
	if !firstMessage {
		c.readLoop()
		return
	}
	if !c.authenticate() {
		close(c.readerDone)
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
	close(c.readerDone)
}

// serveInline serves a request on the reader goroutine and reports whether
// this goroutine is still the reader.
func (c *conn[T]) serveInline(data []byte, h head) bool {
	s := c.e.watch.begin(c.watchShard, c.handoffFn)
	c.serve(data, h)
	return c.e.watch.end(s)
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

// authenticate runs the first-message handshake.
func (c *conn[T]) authenticate() bool {
	e := c.e
	_ = c.ws.SetReadDeadline(time.Now().Add(e.cfg.AuthTimeout))
	mt, data, err := c.ws.ReadMessage()
	if err != nil {
		if isTimeout(err) && !c.isClosing() {
			e.rejected(c.ctx, statusRejectedAuthTimeout, c.id, nil, CloseAuthTimeout)
			c.requestClose(closeReq{code: CloseAuthTimeout, reason: reasonAuthTimeout, frame: true})
			c.drainRaw()
			return false
		}
		c.readFailed(err)
		return false
	}
	if c.isClosing() {
		c.discard()
		return false
	}
	if code := c.checkFrame(mt, data); code != 0 {
		e.rejected(c.ctx, statusRejectedAuth, c.id, nil, code)
		c.discard()
		return false
	}
	p, err := e.verifyFrame(c.ctx, data)
	if err != nil {
		e.rejected(c.ctx, statusRejectedAuth, c.id, nil, CloseUnauthorized)
		c.requestClose(authCloseReq(err))
		c.discard()
		return false
	}
	ok, err := e.acquireSlot(c.ctx, p, c.id)
	if err != nil || !ok {
		cr := closeReq{code: websocket.ClosePolicyViolation, reason: reasonConnLimit, frame: true}
		if err != nil {
			e.flog.Error("ws: connection limiter failed", "error", err)
			cr = closeReq{code: websocket.CloseInternalServerErr, reason: "connection limiter unavailable", frame: true}
		} else {
			e.rejected(c.ctx, statusRejectedLimit, c.id, p, websocket.ClosePolicyViolation)
			e.cfg.LimitMetrics.Hit(ratelimit.LimitConnections)
		}
		c.requestClose(cr)
		c.discard()
		return false
	}
	_ = c.ws.SetReadDeadline(time.Time{})
	// auth_ok is written here, ahead of any push: the writing flag makes
	// pushes that arrive once the connection is registered queue behind it.
	answer := authOK(p)
	c.mu.Lock()
	c.slot = true
	if c.closing != nil || c.writing { // shutting down meanwhile
		c.mu.Unlock()
		c.discard()
		return false
	}
	c.writing = true
	c.queued += len(answer)
	c.mu.Unlock()
	c.accept(p)
	c.sendHeld(answer)
	close(c.authed)
	return true
}

func authCloseReq(err error) closeReq {
	if errkind.Of(err) != errkind.Unauthenticated {
		return closeReq{code: websocket.CloseInternalServerErr, reason: "authentication unavailable", frame: true}
	}
	return closeReq{code: CloseUnauthorized, reason: reasonUnauthorized, frame: true}
}

func authOK(p *auth.Principal) []byte {
	var exp int64
	if !p.ExpiresAt.IsZero() {
		exp = p.ExpiresAt.Unix()
	}
	b, _ := json.Marshal(struct {
		Type      string `json:"type"`
		User      string `json:"user"`
		ExpiresAt int64  `json:"expires_at"`
	}{"auth_ok", p.Username, exp})
	return b
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
func (c *conn[T]) serve(data []byte, h head) {
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
	c.send(out)
}

// send writes msg from the calling request goroutine when nothing else is
// queued or being written (saving a hand-over to the writer), else queues
// it.
func (c *conn[T]) send(msg []byte) {
	c.mu.Lock()
	if c.closing != nil || c.writing || len(c.queue) > 0 {
		c.mu.Unlock()
		c.enqueue(msg)
		return
	}
	c.writing = true
	c.queued += len(msg)
	c.mu.Unlock()
	c.sendHeld(msg)
}

// sendHeld writes msg, whose bytes the caller counted in queued when it
// set the writing flag, then clears the flag.
func (c *conn[T]) sendHeld(msg []byte) {
	err := c.writeMsg(msg)
	c.mu.Lock()
	c.writing = false
	c.queued -= len(msg)
	more := len(c.queue) > 0 || c.closing != nil
	c.mu.Unlock()
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

// reauth replaces the connection's token with the one of an auth frame.
func (c *conn[T]) reauth(data []byte) bool {
	p, err := c.e.verifyFrame(c.ctx, data)
	if err == nil && userKey(p) != userKey(c.principal.Load()) {
		err = auth.ErrInvalidCredentials
	}
	if err != nil {
		c.requestClose(authCloseReq(err))
		return false
	}
	c.principal.Store(p)
	c.armExpiry(p)
	c.send(authOK(p))
	return true
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
		c.mu.Lock()
		cr = c.closing
		if cr != nil && !cr.flush {
			c.queued -= queuedBytes(c.queue)
			c.queue = nil
		}
		if c.writing {
			c.mu.Unlock()
			return false // a request goroutine is writing; it signals when done
		}
		if len(c.queue) == 0 {
			c.queue = nil
			c.mu.Unlock()
			break
		}
		msg := c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
		c.writing = true
		c.mu.Unlock()
		err := c.writeMsg(msg)
		c.mu.Lock()
		c.writing = false
		c.queued -= len(msg)
		c.mu.Unlock()
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

func queuedBytes(q [][]byte) int {
	n := 0
	for _, m := range q {
		n += len(m)
	}
	return n
}

func (c *conn[T]) writeFailed(err error) {
	if isTimeout(err) {
		c.e.flog.Info("ws: slow consumer", "conn_id", c.id)
		c.forceClose(closeReq{code: websocket.ClosePolicyViolation, reason: reasonSlowConsumer, frame: true})
		return
	}
	c.forceClose(closeReq{code: closeAbnormal})
}

// finish releases everything the connection holds.
func (c *conn[T]) finish() {
	c.cancel()
	c.handlers.Wait()
	c.mu.Lock()
	if c.expiry != nil {
		c.expiry.Stop()
	}
	slot, accepted := c.slot, c.accepted
	code := closeAbnormal
	if c.closing != nil {
		code = c.closing.code
	}
	c.queue, c.inflight = nil, nil
	c.mu.Unlock()
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

// verifyFrame checks an auth frame {"type":"auth","token":"Bearer <jwt>"}
// (exactly these two members, once each, both strings, nothing after the
// object) and authenticates its token.
func (e *Endpoint[T]) verifyFrame(ctx context.Context, data []byte) (*auth.Principal, error) {
	typ, cred, ok := parseAuthFrame(data)
	if !ok || typ != "auth" {
		return nil, errBadFrame
	}
	token, err := auth.ParseBearer(cred)
	if err != nil {
		return nil, err
	}
	return e.authenticate(ctx, token)
}

// parseAuthFrame reads the two string members of an auth frame strictly:
// any other member, a member given twice (in any case) or trailing data
// makes it not one.
func parseAuthFrame(data []byte) (typ, token string, ok bool) {
	d := json.NewDecoder(bytes.NewReader(data))
	if t, err := d.Token(); err != nil || t != json.Delim('{') {
		return "", "", false
	}
	var haveType, haveToken bool
	for d.More() {
		k, err := d.Token()
		key, isKey := k.(string)
		if err != nil || !isKey {
			return "", "", false
		}
		v, err := d.Token()
		val, isString := v.(string)
		if err != nil || !isString {
			return "", "", false
		}
		switch {
		case key == "type" && !haveType:
			typ, haveType = val, true
		case key == "token" && !haveToken:
			token, haveToken = val, true
		default:
			return "", "", false
		}
	}
	if t, err := d.Token(); err != nil || t != json.Delim('}') || !haveType || !haveToken {
		return "", "", false
	}
	if _, err := d.Token(); err != io.EOF {
		return "", "", false
	}
	return typ, token, true
}

var errBadFrame = fmt.Errorf(`%w: auth frame must be {"type":"auth","token":"Bearer <token>"}`, auth.ErrTokenDecode)

func (e *Endpoint[T]) authenticate(ctx context.Context, token string) (*auth.Principal, error) {
	p, err := e.cfg.Authenticator.Authenticate(ctx, token)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, auth.ErrInvalidCredentials
	}
	return p, nil
}

// userKey identifies the user of p for caps, limits and pushes.
func userKey(p *auth.Principal) string {
	if p == nil {
		return ""
	}
	if p.ID != "" {
		return p.ID
	}
	return p.Username
}

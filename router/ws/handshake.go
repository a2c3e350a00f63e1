package ws

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/internal/errkind"
	"github.com/pkgroute/pkgroute/ratelimit"
)

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

// authenticate runs the first-message handshake.
func (c *conn[T]) authenticate() bool {
	e := c.e
	_ = c.ws.SetReadDeadline(time.Now().Add(e.cfg.AuthTimeout))
	mt, data, err := c.ws.ReadMessage()
	if err == nil {
		c.reads++
	}
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
	c.mu.Unlock()
	if !c.q.acquire(len(answer), false) { // shutting down meanwhile
		c.discard()
		return false
	}
	c.accept(p)
	c.sendHeld(answer)
	c.startPings()
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

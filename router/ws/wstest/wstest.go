package wstest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/pkgroute/pkgroute/router"
)

// Message is a message received from the server: a reply, a push or an
// auth_ok frame.
type Message struct {
	// PkgID is the pkg_id member.
	PkgID int64
	// ReqID is the req_id member; the zero UUID for pushes.
	ReqID uuid.UUID
	// Status is the status_code member; nil when absent (pushes).
	Status *router.StatusCode
	// Meta and Data are the raw meta and data members.
	Meta, Data json.RawMessage
	// Raw is the whole message as received.
	Raw []byte
}

// IsPush reports whether m is a server push: the zero req_id and no
// status_code.
func (m *Message) IsPush() bool { return m.Status == nil && m.ReqID == uuid.Nil }

// StatusCode returns the status code, or -1 for a message without one.
func (m *Message) StatusCode() router.StatusCode {
	if m.Status == nil {
		return -1
	}
	return *m.Status
}

// Error decodes the error object of a reply with a non-zero status; nil
// otherwise.
func (m *Message) Error() *router.ErrorBody {
	if m.Status == nil || *m.Status == router.StatusOK {
		return nil
	}
	var b router.ErrorBody
	if err := json.Unmarshal(m.Data, &b); err != nil {
		return &router.ErrorBody{Code: "undecodable", Msg: err.Error()}
	}
	return &b
}

// AuthOK is the server's answer to an auth frame.
type AuthOK struct {
	User      string `json:"user"`
	ExpiresAt int64  `json:"expires_at"`
}

// HandshakeError is returned by Dial when the server refused the upgrade.
type HandshakeError struct {
	StatusCode int
	Header     http.Header
	Body       []byte
}

// Error describes the refusal.
func (e *HandshakeError) Error() string {
	return fmt.Sprintf("wstest: upgrade refused: HTTP %d: %s", e.StatusCode, bytes.TrimSpace(e.Body))
}

// ErrClosed is returned by calls on a connection the server or Close has
// closed; errors.As with *websocket.CloseError gives the close frame.
var ErrClosed = errors.New("wstest: connection closed")

type options struct {
	firstMessage bool
	header       http.Header
	dialer       *websocket.Dialer
}

// Option configures Dial.
type Option func(*options)

// FirstMessage authenticates with an auth frame after the upgrade
// instead of the Authorization header; Dial waits for auth_ok.
func FirstMessage() Option { return func(o *options) { o.firstMessage = true } }

// WithHeader adds headers to the upgrade request (e.g. Origin).
func WithHeader(h http.Header) Option {
	return func(o *options) {
		for k, v := range h {
			o.header[k] = append(o.header[k], v...)
		}
	}
}

// WithDialer uses d instead of websocket.DefaultDialer.
func WithDialer(d *websocket.Dialer) Option { return func(o *options) { o.dialer = d } }

// Client is a connection to a pkgroute WebSocket endpoint. Its methods
// are safe for concurrent use.
type Client struct {
	ws     *websocket.Conn
	wmu    sync.Mutex
	authOK *AuthOK

	mu      sync.Mutex
	pending map[uuid.UUID]chan *Message
	queue   []*Message
	authCh  chan AuthOK
	notify  chan struct{}
	closeE  *websocket.CloseError
	readErr error
	done    chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// Dial connects to url (ws:// or wss://). With a token, it authenticates
// with "Authorization: Bearer <token>", or with an auth frame when
// FirstMessage is given; an empty token sends no credentials.
func Dial(ctx context.Context, url, token string, opts ...Option) (*Client, error) {
	o := options{header: http.Header{}, dialer: websocket.DefaultDialer}
	for _, opt := range opts {
		opt(&o)
	}
	if token != "" && !o.firstMessage {
		o.header.Set("Authorization", "Bearer "+token)
	}
	ws, resp, err := o.dialer.DialContext(ctx, url, o.header)
	if err != nil {
		if resp != nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			_ = resp.Body.Close()
			return nil, &HandshakeError{StatusCode: resp.StatusCode, Header: resp.Header, Body: body}
		}
		return nil, err
	}
	c := &Client{
		ws:      ws,
		pending: make(map[uuid.UUID]chan *Message),
		authCh:  make(chan AuthOK, 1),
		notify:  make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	go c.readLoop()
	if token != "" && o.firstMessage {
		ok, err := c.Auth(ctx, token)
		if err != nil {
			_ = c.Close()
			return nil, err
		}
		c.authOK = ok
	}
	return c, nil
}

// Conn returns the underlying connection, for tests that write frames
// directly.
func (c *Client) Conn() *websocket.Conn { return c.ws }

// AuthOK returns the auth_ok answer of a first-message Dial, or nil.
func (c *Client) AuthOK() *AuthOK { return c.authOK }

func (c *Client) readLoop() {
	defer close(c.done)
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			c.mu.Lock()
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				c.closeE = ce
			} else {
				c.closeE = &websocket.CloseError{Code: websocket.CloseAbnormalClosure, Text: err.Error()}
			}
			c.readErr = err
			for id, ch := range c.pending {
				close(ch)
				delete(c.pending, id)
			}
			c.mu.Unlock()
			return
		}
		c.dispatch(data)
	}
}

func (c *Client) dispatch(data []byte) {
	var wire struct {
		Type       string             `json:"type"`
		User       string             `json:"user"`
		ExpiresAt  int64              `json:"expires_at"`
		PkgID      int64              `json:"pkg_id"`
		ReqID      string             `json:"req_id"`
		StatusCode *router.StatusCode `json:"status_code"`
		Meta       json.RawMessage    `json:"meta"`
		Data       json.RawMessage    `json:"data"`
	}
	_ = json.Unmarshal(data, &wire)
	if wire.Type == "auth_ok" {
		select {
		case c.authCh <- AuthOK{User: wire.User, ExpiresAt: wire.ExpiresAt}:
		default:
		}
		return
	}
	id, _ := uuid.Parse(wire.ReqID)
	m := &Message{PkgID: wire.PkgID, ReqID: id, Status: wire.StatusCode, Meta: wire.Meta, Data: wire.Data, Raw: data}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ch, ok := c.pending[id]; ok && id != uuid.Nil {
		delete(c.pending, id)
		ch <- m
		return
	}
	c.queue = append(c.queue, m)
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// Send writes raw as one text message.
func (c *Client) Send(ctx context.Context, raw []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if d, ok := ctx.Deadline(); ok {
		_ = c.ws.SetWriteDeadline(d)
	} else {
		_ = c.ws.SetWriteDeadline(time.Time{})
	}
	err := c.ws.WriteMessage(websocket.TextMessage, raw)
	if errors.Is(err, websocket.ErrCloseSent) || errors.Is(err, net.ErrClosed) {
		// The connection is closing (the server's close frame was
		// answered, or Close ran): report it like every other call on a
		// closed connection.
		return fmt.Errorf("%w: %w", ErrClosed, err)
	}
	return err
}

// Call sends {"pkg_id","req_id","data"} with a fresh req_id and waits for
// the reply with the same req_id. data may be nil, a json.RawMessage or
// any value that encodes to JSON.
func (c *Client) Call(ctx context.Context, pkgID int64, data any) (*Message, error) {
	return c.CallID(ctx, uuid.New(), pkgID, data)
}

// CallID is Call with a given req_id.
func (c *Client) CallID(ctx context.Context, reqID uuid.UUID, pkgID int64, data any) (*Message, error) {
	env := struct {
		PkgID int64           `json:"pkg_id"`
		ReqID string          `json:"req_id"`
		Data  json.RawMessage `json:"data,omitempty"`
	}{PkgID: pkgID, ReqID: reqID.String()}
	if data != nil {
		raw, ok := data.(json.RawMessage)
		if !ok {
			var err error
			if raw, err = json.Marshal(data); err != nil {
				return nil, err
			}
		}
		env.Data = raw
	}
	msg, err := json.Marshal(env)
	if err != nil {
		return nil, err
	}
	ch := make(chan *Message, 1)
	c.mu.Lock()
	if c.readErr != nil {
		c.mu.Unlock()
		return nil, c.closedErr()
	}
	if _, dup := c.pending[reqID]; dup {
		c.mu.Unlock()
		return nil, fmt.Errorf("wstest: req_id %s already awaited", reqID)
	}
	c.pending[reqID] = ch
	c.mu.Unlock()
	if err := c.Send(ctx, msg); err != nil {
		c.mu.Lock()
		delete(c.pending, reqID)
		c.mu.Unlock()
		return nil, err
	}
	select {
	case m, ok := <-ch:
		if !ok {
			return nil, c.closedErr()
		}
		return m, nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, reqID)
		c.mu.Unlock()
		return nil, ctx.Err()
	}
}

// Auth sends {"type":"auth","token":"Bearer <token>"} and waits for
// auth_ok. When the server closes the connection instead, the error wraps
// ErrClosed and the *websocket.CloseError.
func (c *Client) Auth(ctx context.Context, token string) (*AuthOK, error) {
	frame, _ := json.Marshal(map[string]string{"type": "auth", "token": "Bearer " + token})
	if err := c.Send(ctx, frame); err != nil {
		return nil, err
	}
	select {
	case ok := <-c.authCh:
		return &ok, nil
	case <-c.done:
		return nil, c.closedErr()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Next returns the next message that answered no Call: pushes, and
// replies to messages written with Send.
func (c *Client) Next(ctx context.Context) (*Message, error) {
	for {
		c.mu.Lock()
		if len(c.queue) > 0 {
			m := c.queue[0]
			c.queue = c.queue[1:]
			c.mu.Unlock()
			return m, nil
		}
		c.mu.Unlock()
		select {
		case <-c.notify:
		case <-c.done:
			c.mu.Lock()
			n := len(c.queue)
			c.mu.Unlock()
			if n == 0 {
				return nil, c.closedErr()
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Wait waits until the connection is closed and returns the server's close
// frame (code 1006 when the connection ended without one).
func (c *Client) Wait(ctx context.Context) (*websocket.CloseError, error) {
	select {
	case <-c.done:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.closeE, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Done is closed when the connection has ended.
func (c *Client) Done() <-chan struct{} { return c.done }

func (c *Client) closedErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closeE != nil {
		return fmt.Errorf("%w: %w", ErrClosed, c.closeE)
	}
	return ErrClosed
}

// Close sends a normal close frame (1000), waits briefly for the server's
// answer and releases the connection. It may be called more than once.
func (c *Client) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.close() })
	return c.closeErr
}

func (c *Client) close() error {
	select {
	case <-c.done: // the server closed it already
		_ = c.ws.Close()
		return nil
	default:
	}
	c.wmu.Lock()
	err := c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""),
		time.Now().Add(time.Second))
	c.wmu.Unlock()
	t := time.NewTimer(2 * time.Second)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
	}
	_ = c.ws.Close()
	<-c.done
	if errors.Is(err, websocket.ErrCloseSent) || errors.Is(err, net.ErrClosed) {
		err = nil
	}
	return err
}

package ws

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/gorilla/websocket"
	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/internal/errkind"
	"github.com/pkgroute/pkgroute/internal/lograte"
	"github.com/pkgroute/pkgroute/ratelimit"
	"github.com/pkgroute/pkgroute/router"
)

// Buffer sizes of a connection: a small read buffer is all an idle
// connection keeps; write buffers are pooled and held only while writing.
const (
	readBufferSize  = 1024
	writeBufferSize = 8 << 10
)

// handoffDelay is how long a request may run on its connection's reader
// before the reading moves to another goroutine (see conn.readLoop).
const handoffDelay = 250 * time.Microsecond

// Endpoint is the WebSocket transport of a PackageRouter: an http.Handler
// that upgrades authenticated connections and dispatches their messages,
// and a hub that pushes to them.
type Endpoint[T router.ID] struct {
	r        *router.PackageRouter[T]
	cfg      Config
	log      *slog.Logger
	flog     *lograte.Logger // records a fault can repeat
	metrics  *metrics
	origins  originPolicy
	upgrader websocket.Upgrader
	instance string
	limitOn  bool
	bucketOn bool

	mu       sync.RWMutex
	conns    map[string]*conn[T]            // every open connection, by id
	byUser   map[string]map[string]*conn[T] // authenticated connections by user
	draining atomic.Bool
	active   atomic.Int64
	inflight atomic.Int64
	wg       sync.WaitGroup // one per connection

	watch        *inlineWatch
	batches      sync.Pool // *[]byte, buffers of gathered writes (see writeBatch)
	shutdownOnce sync.Once
	brokerStop   context.CancelFunc
	brokerDone   chan struct{}
}

// New returns the endpoint of r. It panics when cfg has no Authenticator
// or an invalid allowed origin or message rate (configuration mistakes).
// With a Broker it starts receiving pushes of other instances until
// Shutdown.
func New[T router.ID](r *router.PackageRouter[T], cfg Config) *Endpoint[T] {
	if r == nil {
		panic("ws: New needs a router")
	}
	if cfg.Authenticator == nil {
		panic("ws: Config.Authenticator is required")
	}
	origins, err := newOriginPolicy(cfg.AllowedOrigins)
	if err != nil {
		panic(err.Error())
	}
	cfg = cfg.withDefaults()
	e := &Endpoint[T]{
		r:        r,
		cfg:      cfg,
		log:      cfg.Logger,
		flog:     lograte.New(cfg.Logger, cfg.LogInterval, nil),
		metrics:  newMetrics(cfg.Registerer),
		origins:  origins,
		instance: uuid.NewString(),
		limitOn:  cfg.MessageRate.Limit > 0,
		bucketOn: cfg.ConnMessageRate.Limit > 0,
		conns:    make(map[string]*conn[T]),
		byUser:   make(map[string]map[string]*conn[T]),
	}
	e.watch = newInlineWatch(handoffDelay)
	if e.limitOn {
		if err := cfg.MessageRate.Validate(); err != nil {
			panic("ws: Config.MessageRate: " + err.Error())
		}
	}
	if e.bucketOn {
		if err := cfg.ConnMessageRate.Validate(); err != nil {
			panic("ws: Config.ConnMessageRate: " + err.Error())
		}
	}
	e.upgrader = websocket.Upgrader{
		HandshakeTimeout: 10 * time.Second,
		ReadBufferSize:   readBufferSize,
		WriteBufferSize:  writeBufferSize,
		WriteBufferPool:  &bufferPool{max: 64},
		CheckOrigin:      func(*http.Request) bool { return true }, // checked before
		Error: func(w http.ResponseWriter, _ *http.Request, status int, reason error) {
			code := errkind.InvalidRequest.Code()
			if status >= 500 {
				code = errkind.Internal.Code()
			}
			auth.WriteError(w, status, code, reason.Error())
		},
	}
	if cfg.Broker != nil {
		ctx, cancel := context.WithCancel(context.Background())
		e.brokerStop, e.brokerDone = cancel, make(chan struct{})
		go func() {
			defer close(e.brokerDone)
			if err := cfg.Broker.Run(ctx, e.deliverRemote, e.brokerFailed); err != nil && ctx.Err() == nil {
				e.log.Error("ws: broker stopped", "error", err)
			}
		}()
	}
	return e
}

type connIDKey struct{}

// ConnID returns the id of the WebSocket connection a request arrived on,
// or "" outside a WebSocket request. Handlers use it to push to their own
// connection later.
func ConnID(ctx context.Context) string {
	s, _ := ctx.Value(connIDKey{}).(string)
	return s
}

// ActiveConnections returns the number of authenticated connections open
// now (for health checks).
func (e *Endpoint[T]) ActiveConnections() int { return int(e.active.Load()) }

func (e *Endpoint[T]) isDraining() bool { return e.draining.Load() }

// ServeHTTP checks the origin, authenticates the Authorization header (or
// the query token when allowed), takes a connection slot and upgrades. A
// request without credentials is upgraded and must authenticate with its
// first message.
func (e *Endpoint[T]) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if e.isDraining() {
		w.Header().Set("Retry-After", "1")
		auth.WriteError(w, http.StatusServiceUnavailable, errkind.Unavailable.Code(), "The server is shutting down")
		return
	}
	if !e.origins.allow(r.Header.Values("Origin"), r.Host) {
		e.rejected(r.Context(), statusRejectedOrigin, "", nil, http.StatusForbidden)
		e.log.Debug("ws: origin not allowed", "path", r.URL.Path, "origin", r.Header.Get("Origin"))
		auth.WriteError(w, http.StatusForbidden, "origin_not_allowed", "Origin not allowed")
		return
	}
	if !websocket.IsWebSocketUpgrade(r) {
		auth.WriteError(w, http.StatusBadRequest, errkind.InvalidRequest.Code(), "WebSocket upgrade required")
		return
	}
	token, present, err := e.requestToken(r)
	if err != nil {
		e.rejected(r.Context(), statusRejectedAuth, "", nil, http.StatusUnauthorized)
		e.log.Debug("ws: upgrade refused", "path", r.URL.Path, "reason", auth.Reason(err))
		challenge, msg := `Bearer error="invalid_token"`, queryMessage(err)
		switch {
		case errors.Is(err, errQueryToken):
			challenge = `Bearer error="invalid_request"`
		case errors.Is(err, auth.ErrOtherScheme), errors.Is(err, auth.ErrNoToken):
			// Credentials of another scheme, or the Bearer scheme without
			// a token, carry no bearer token (RFC 6750 section 3.1: no
			// error code).
			challenge, msg = "Bearer", "Authentication required"
		}
		w.Header().Set("WWW-Authenticate", challenge)
		auth.WriteError(w, http.StatusUnauthorized, errkind.Unauthenticated.Code(), msg)
		return
	}
	id := uuid.NewString()
	var p *auth.Principal
	if present {
		p, err = e.authenticate(r.Context(), token)
		if err != nil {
			if errkind.Of(err) != errkind.Unauthenticated {
				e.flog.Error("ws: token verification failed", "path", r.URL.Path, "error", err)
				w.Header().Set("Retry-After", "1")
				auth.WriteError(w, http.StatusServiceUnavailable, errkind.Unavailable.Code(), "Authentication unavailable")
				return
			}
			e.rejected(r.Context(), statusRejectedAuth, "", nil, http.StatusUnauthorized)
			e.log.Debug("ws: upgrade refused", "path", r.URL.Path, "reason", auth.Reason(err))
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			auth.WriteError(w, http.StatusUnauthorized, errkind.Unauthenticated.Code(), auth.Message(err))
			return
		}
		ok, err := e.acquireSlot(r.Context(), p, id)
		if err != nil {
			e.flog.Error("ws: connection limiter failed", "error", err)
			w.Header().Set("Retry-After", "1")
			auth.WriteError(w, http.StatusServiceUnavailable, errkind.Unavailable.Code(), "Connection limiter unavailable")
			return
		}
		if !ok {
			e.rejected(r.Context(), statusRejectedLimit, "", p, http.StatusTooManyRequests)
			e.cfg.LimitMetrics.Hit(ratelimit.LimitConnections)
			w.Header().Set("Retry-After", strconv.Itoa(int(max(e.cfg.ConnLimitRetryAfter.Round(time.Second)/time.Second, 1))))
			auth.WriteError(w, http.StatusTooManyRequests, "connection_limit_exceeded", "Maximum concurrent connections exceeded")
			return
		}
	}
	base := context.WithValue(router.WithTransport(context.WithoutCancel(r.Context()), "ws"), connIDKey{}, id)
	ctx, cancel := context.WithCancel(base)
	c := &conn[T]{
		e: e, id: id, ctx: ctx, cancel: cancel,
		readerDone: make(chan struct{}), done: make(chan struct{}), sem: make(chan struct{}, e.cfg.MaxInflight),
	}
	if !e.track(c) {
		cancel()
		if p != nil {
			e.releaseSlot(ctx, p, id)
		}
		w.Header().Set("Retry-After", "1")
		auth.WriteError(w, http.StatusServiceUnavailable, errkind.Unavailable.Code(), "The server is shutting down")
		return
	}
	if p != nil {
		// Registered before the 101 answer: a push made once the client
		// is connected reaches it.
		c.slot = true
		c.accept(p)
	}
	// The 101 answer carries the headers that outer middleware already set
	// (security headers, correlation id).
	wsc, err := e.upgrader.Upgrade(&watchHijack{ResponseWriter: w}, r, w.Header())
	if err != nil {
		c.finish()
		return
	}
	wsc.SetReadLimit(e.cfg.MaxMessageSize)
	wsc.SetCloseHandler(func(int, string) error { return nil }) // the writer answers
	wsc.SetPongHandler(func(string) error {
		if c.awaitingPong.CompareAndSwap(true, false) {
			return wsc.SetReadDeadline(time.Time{})
		}
		return nil
	})
	c.mu.Lock()
	c.ws, c.nc = wsc, wsc.NetConn()
	c.mu.Unlock()
	if p != nil {
		c.startPings()
	}
	c.handoffFn = c.handoff
	c.watchShard = e.watch.shard()
	c.startWriter()
	go c.read(p == nil)
}

var errQueryToken = fmt.Errorf("%w: query-string tokens are not accepted", auth.ErrTokenDecode)

func queryMessage(err error) string {
	if errors.Is(err, errQueryToken) {
		return "Query-string tokens are not accepted"
	}
	return auth.Message(err)
}

// requestToken returns the bearer token of the upgrade request: the
// Authorization header, or the query parameter when the app allows it. A
// query token the app does not allow is refused even next to a header.
// present is false when the request carries no credentials.
func (e *Endpoint[T]) requestToken(r *http.Request) (token string, present bool, err error) {
	q := r.URL.Query()
	if q.Has(e.cfg.QueryTokenParam) && !e.cfg.AllowQueryToken {
		return "", true, errQueryToken
	}
	if len(r.Header.Values("Authorization")) > 0 {
		token, err = auth.BearerToken(r)
		return token, true, err
	}
	if !q.Has(e.cfg.QueryTokenParam) {
		return "", false, nil
	}
	token = q.Get(e.cfg.QueryTokenParam)
	if token == "" {
		return "", true, auth.ErrTokenDecode
	}
	return token, true, nil
}

func (e *Endpoint[T]) acquireSlot(ctx context.Context, p *auth.Principal, id string) (bool, error) {
	if e.cfg.MaxConnsPerUser < 0 {
		return true, nil
	}
	return e.cfg.Connections.Acquire(ctx, userKey(p), id, e.cfg.MaxConnsPerUser)
}

func (e *Endpoint[T]) releaseSlot(ctx context.Context, p *auth.Principal, id string) {
	if e.cfg.MaxConnsPerUser < 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := e.cfg.Connections.Release(ctx, userKey(p), id); err != nil {
		e.flog.Error("ws: release connection slot", "error", err)
	}
}

// track registers a new connection; false when shutting down.
func (e *Endpoint[T]) track(c *conn[T]) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.draining.Load() {
		return false
	}
	e.conns[c.id] = c
	e.wg.Add(1)
	return true
}

// rejected counts a refused connection and reports it to OnEvent.
func (e *Endpoint[T]) rejected(ctx context.Context, status, connID string, p *auth.Principal, code int) {
	e.metrics.conn(status)
	if e.cfg.OnEvent != nil {
		e.cfg.OnEvent(ctx, Event{Type: EventRejected, ConnID: connID, Principal: p,
			Reason: strings.TrimPrefix(status, "rejected_"), CloseCode: code})
	}
}

// accepted counts an authenticated connection and indexes it by user.
func (e *Endpoint[T]) accepted(c *conn[T]) {
	e.metrics.conn(statusAccepted)
	if e.cfg.OnEvent != nil {
		e.cfg.OnEvent(c.ctx, Event{Type: EventConnected, ConnID: c.id, Principal: c.principal.Load()})
	}
	e.metrics.activeAdd(1)
	e.active.Add(1)
	u := userKey(c.principal.Load())
	e.mu.Lock()
	defer e.mu.Unlock()
	m := e.byUser[u]
	if m == nil {
		m = make(map[string]*conn[T], 1)
		e.byUser[u] = m
	}
	m[c.id] = c
}

func (e *Endpoint[T]) remove(c *conn[T], accepted bool) {
	e.mu.Lock()
	delete(e.conns, c.id)
	if accepted {
		u := userKey(c.principal.Load())
		if m := e.byUser[u]; m != nil {
			delete(m, c.id)
			if len(m) == 0 {
				delete(e.byUser, u)
			}
		}
	}
	e.mu.Unlock()
	if accepted {
		e.active.Add(-1)
		e.metrics.activeAdd(-1)
	}
}

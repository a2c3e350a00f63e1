package ws

import (
	"context"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/ratelimit"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of Config (docs/protocol.md section 1).
const (
	DefaultAuthTimeout           = 5 * time.Second
	DefaultExpiryLeeway          = 30 * time.Second
	DefaultMaxConnsPerUser       = 5
	DefaultMaxMessageSize        = 64 << 10
	DefaultSendQueueBytes        = 1 << 20
	DefaultWriteTimeout          = 5 * time.Second
	DefaultPingInterval          = 25 * time.Second
	DefaultPongTimeout           = 10 * time.Second
	DefaultMaxInflight           = 16
	DefaultMessagesPerMinute     = 100
	DefaultMaxConsecutiveLimited = 20
	DefaultCloseGrace            = time.Second
	DefaultDrainConcurrency      = 64
	DefaultQueryTokenParam       = "access_token"
	DefaultConnLimitRetryAfter   = 5 * time.Second
)

// Config configures an Endpoint. Authenticator is required; every other
// zero field means the documented default (so do negative durations and
// sizes, except where a field says otherwise).
type Config struct {
	// Authenticator verifies bearer tokens (header, query string and
	// first-message auth frames).
	Authenticator auth.Authenticator

	// AllowedOrigins lists the full origins (scheme://host[:port]) whose
	// browsers may connect. Empty means the request's own host only; "*"
	// allows every origin. Requests without an Origin header are allowed.
	AllowedOrigins []string

	// AllowQueryToken accepts a bare token in the query parameter named
	// QueryTokenParam (default "access_token") at upgrade, for legacy
	// clients. Off by default: such requests are refused with 401. The
	// query string never reaches a log line.
	AllowQueryToken bool
	// QueryTokenParam is the query parameter of AllowQueryToken.
	QueryTokenParam string

	// AuthTimeout is how long a connection without an Authorization header
	// has to send its auth frame (default 5 s; close 4002).
	AuthTimeout time.Duration
	// ExpiryLeeway is added to the token's expiry before the connection is
	// closed with 4003 (default 30 s, the verifier's leeway). A negative
	// value means no leeway.
	ExpiryLeeway time.Duration

	// MaxConnsPerUser caps the concurrent connections of one user (by
	// principal ID; default 5). A negative value means no cap.
	MaxConnsPerUser int
	// Connections holds the connection slots; nil means an in-process
	// ratelimit.MemoryConnections. Share a Redis-backed one between
	// instances to cap users across them (a limiter whose slots carry a
	// lease, such as redislimit.Connections, must be renewing them: run
	// its Run method).
	Connections ratelimit.ConnectionLimiter
	// ConnLimitRetryAfter is the Retry-After of the 429 answer to an
	// upgrade over the cap (default 5 s).
	ConnLimitRetryAfter time.Duration

	// MessageRate limits the request messages of one user, across their
	// connections (default 100 per minute). A negative MessageRate.Limit
	// turns the limit off.
	MessageRate ratelimit.Rate
	// Limiter enforces MessageRate under the key "ws:<principal id>"; nil
	// means an in-process ratelimit.Memory (its decisions counted as
	// limiter "ws").
	Limiter ratelimit.Limiter
	// ConnMessageRate limits the request messages of one connection with an
	// in-process token bucket (ratelimit.Bucket: Limit+Burst at once, Limit
	// per Window sustained), checked before MessageRate, so that a flooding
	// connection is refused without a call to Limiter, which may be remote.
	// Zero means MessageRate; a negative Limit turns it off. Its refusals
	// are answered, counted and audited like MessageRate's.
	ConnMessageRate ratelimit.Rate
	// MaxConsecutiveLimited closes a connection with 1008 right after this
	// many consecutive rate-limited messages (default 20). A negative value
	// never closes.
	MaxConsecutiveLimited int

	// MaxMessageSize is the largest message accepted (default 64 KiB;
	// larger: close 1009).
	MaxMessageSize int64
	// SendQueueBytes bounds the bytes waiting to be written to one
	// connection (default 1 MiB; overflow: close 1008 "slow consumer").
	SendQueueBytes int
	// WriteTimeout bounds every write (default 5 s; exceeded: close 1008
	// "slow consumer").
	WriteTimeout time.Duration
	// PingInterval is the time between server pings (default 25 s).
	PingInterval time.Duration
	// PongTimeout is how long the peer has to answer a ping (default 10 s)
	// before the connection is dropped.
	PongTimeout time.Duration
	// MaxInflight is the number of requests of one connection that run at
	// once (default 16); further requests wait.
	MaxInflight int
	// CloseGrace is how long the server waits for the peer's close frame
	// after sending its own before it drops the TCP connection (default
	// 1 s).
	CloseGrace time.Duration
	// DrainConcurrency bounds the connections closed at once by Shutdown
	// (default 64).
	DrainConcurrency int

	// Broker fans pushes out to the endpoints of other instances; nil
	// means this endpoint only.
	Broker Broker

	// OnEvent, when set, is told of every connection's lifecycle: accepted
	// (authenticated), rejected (origin, authentication, timeout, cap) and
	// disconnected, and of requests refused by the message rate limit,
	// e.g. to audit them. The context carries the upgrade
	// request's values. It runs on the connection's goroutines: it must not
	// block.
	OnEvent func(ctx context.Context, ev Event)

	// Logger receives connection errors; nil discards.
	Logger *slog.Logger
	// LogInterval bounds the records that a failing dependency repeats
	// (broker, limiters, authenticator): at most one per kind per interval,
	// the next one counting those left out ("suppressed"). Default
	// lograte.DefaultInterval (10 s).
	LogInterval time.Duration
	// Registerer receives the ws_* metrics of docs/protocol.md section 4; nil
	// means no metrics.
	Registerer prometheus.Registerer
	// LimitMetrics counts refusals in rate_limit_hits_total (limit types
	// "websocket" and "connections"); nil means ratelimit.NewMetrics(Registerer),
	// which shares the collectors already registered.
	LimitMetrics *ratelimit.Metrics
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	switch {
	case c.ExpiryLeeway == 0:
		c.ExpiryLeeway = DefaultExpiryLeeway
	case c.ExpiryLeeway < 0:
		c.ExpiryLeeway = 0
	}
	def(&c.AuthTimeout, DefaultAuthTimeout)
	def(&c.WriteTimeout, DefaultWriteTimeout)
	def(&c.PingInterval, DefaultPingInterval)
	def(&c.PongTimeout, DefaultPongTimeout)
	def(&c.CloseGrace, DefaultCloseGrace)
	def(&c.ConnLimitRetryAfter, DefaultConnLimitRetryAfter)
	if c.QueryTokenParam == "" {
		c.QueryTokenParam = DefaultQueryTokenParam
	}
	if c.MaxConnsPerUser == 0 {
		c.MaxConnsPerUser = DefaultMaxConnsPerUser
	}
	if c.Connections == nil {
		c.Connections = ratelimit.NewMemoryConnections()
	}
	if c.MessageRate == (ratelimit.Rate{}) {
		c.MessageRate = ratelimit.PerMinute(DefaultMessagesPerMinute)
	}
	if c.ConnMessageRate == (ratelimit.Rate{}) {
		c.ConnMessageRate = c.MessageRate
	}
	if c.MessageRate.Limit > 0 && c.Limiter == nil {
		c.Limiter = ratelimit.NewMemory(ratelimit.MemoryConfig{Name: "ws", Registerer: c.Registerer})
	}
	if c.MaxConsecutiveLimited == 0 {
		c.MaxConsecutiveLimited = DefaultMaxConsecutiveLimited
	}
	if c.MaxMessageSize <= 0 {
		c.MaxMessageSize = DefaultMaxMessageSize
	}
	if c.SendQueueBytes <= 0 {
		c.SendQueueBytes = DefaultSendQueueBytes
	}
	if c.MaxInflight <= 0 {
		c.MaxInflight = DefaultMaxInflight
	}
	if c.DrainConcurrency <= 0 {
		c.DrainConcurrency = DefaultDrainConcurrency
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.LimitMetrics == nil {
		c.LimitMetrics = ratelimit.NewMetrics(c.Registerer)
	}
	return c
}

// originPolicy decides which Origin headers may connect.
type originPolicy struct {
	any     bool
	allowed map[string]bool // normalized origins; nil = same host
}

func newOriginPolicy(origins []string) (originPolicy, error) {
	var p originPolicy
	for _, o := range origins {
		if o == "*" {
			p.any = true
			continue
		}
		n, ok := normalizeOrigin(o)
		if !ok {
			return p, &configError{"invalid allowed origin " + `"` + o + `"` + " (want scheme://host[:port])"}
		}
		if p.allowed == nil {
			p.allowed = make(map[string]bool)
		}
		p.allowed[n] = true
	}
	return p, nil
}

// normalizeOrigin lower-cases scheme and host and drops the scheme's
// default port.
func normalizeOrigin(s string) (string, bool) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" || u.User != nil || (u.Path != "" && u.Path != "/") ||
		u.RawQuery != "" || u.Fragment != "" {
		return "", false
	}
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	port := u.Port()
	if (scheme == "http" || scheme == "ws") && port == "80" || (scheme == "https" || scheme == "wss") && port == "443" {
		host = strings.ToLower(u.Hostname())
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
	}
	return scheme + "://" + host, true
}

// allow reports whether a request with the given Origin header values and
// Host may connect.
func (p originPolicy) allow(origins []string, host string) bool {
	switch len(origins) {
	case 0:
		return true
	case 1:
	default:
		return false
	}
	if p.any {
		return true
	}
	n, ok := normalizeOrigin(origins[0])
	if !ok {
		return false
	}
	if p.allowed != nil {
		return p.allowed[n]
	}
	u, _ := url.Parse(n)
	return strings.EqualFold(u.Host, host) || strings.EqualFold(u.Hostname(), host) && u.Port() == ""
}

type configError struct{ msg string }

func (e *configError) Error() string { return "ws: " + e.msg }

// EventType names a connection lifecycle event.
type EventType string

// The connection lifecycle events.
const (
	EventConnected    EventType = "connected"
	EventRejected     EventType = "rejected"
	EventDisconnected EventType = "disconnected"
	// EventRateLimited: a request refused by the message rate limit (it
	// never reaches the router and its middleware).
	EventRateLimited EventType = "rate_limited"
)

// Event is a connection lifecycle event (Config.OnEvent).
type Event struct {
	Type EventType
	// ConnID identifies the connection; empty for refusals before the
	// upgrade.
	ConnID string
	// Principal is the caller, when known.
	Principal *auth.Principal
	// Reason says why a connection was rejected: "origin", "auth",
	// "auth_timeout" or "limit".
	Reason string
	// CloseCode is the close code of a rejected or disconnected connection,
	// or the HTTP status of a refused upgrade.
	CloseCode int
	// PkgID is the pkg_id of a rate-limited request (0 when unreadable).
	PkgID int64
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Protocols spoken by the load generator.
const (
	// ProtocolPkgroute is pkgroute's envelope protocol (docs/protocol.md).
	ProtocolPkgroute = "pkgroute"
	// ProtocolCentrifuge is centrifuge's JSON protocol: connect, then rpc.
	ProtocolCentrifuge = "centrifuge"
)

// Authentication modes.
const (
	// AuthHeader sends "Authorization: Bearer <token>" with the upgrade.
	AuthHeader = "header"
	// AuthFirstMessage sends the token in the first message: a pkgroute
	// auth frame, or the token of centrifuge's connect command.
	AuthFirstMessage = "first-message"
	// AuthNone sends no token.
	AuthNone = "none"
)

// Defaults and bounds of LoadConfig.
const (
	// DefaultDuration is the default bound of a run (load) or hold (idle).
	DefaultDuration = 10 * time.Second
	// MaxDuration is the largest Duration accepted.
	MaxDuration = 10 * time.Minute
	// DefaultUser and DefaultPassword are a development user of the
	// example app (examples/authorsvc).
	DefaultUser, DefaultPassword = "writer", "writer"
	// DefaultPkgID is the example app's PING.
	DefaultPkgID = 10
	// DefaultDialConcurrency bounds the connections being opened at once.
	DefaultDialConcurrency = 32
	// DefaultDialTimeout bounds each connection's dial, upgrade and
	// authentication.
	DefaultDialTimeout = 10 * time.Second
	// DefaultSetupTimeout bounds the opening of all connections.
	DefaultSetupTimeout = 2 * time.Minute
	// DefaultDrainTimeout is how long replies are awaited once sending
	// stopped.
	DefaultDrainTimeout = 5 * time.Second
	// MaxConns, MaxInFlight and MaxSize bound the matching fields.
	MaxConns, MaxInFlight, MaxSize = 100_000, 4096, 1 << 20
	// MaxSourceAddrs bounds SourceAddrs (127.0.0.1 to 127.0.0.250).
	MaxSourceAddrs = 250
)

// LoadConfig describes one run. The zero value of a field means its default
// where one is documented.
type LoadConfig struct {
	// URL is the WebSocket endpoint (ws:// or wss://).
	URL string
	// Protocol is ProtocolPkgroute (default) or ProtocolCentrifuge.
	Protocol string
	// Auth is AuthHeader (default), AuthFirstMessage or AuthNone.
	Auth string
	// Token is the bearer token; empty means one obtained from LoginURL
	// with User and Password (unless Auth is AuthNone).
	Token string
	// LoginURL answers POST {"username","password"} with a token response
	// ({"access_token": ...}); default the /auth/login of URL's host.
	LoginURL string
	// User and Password log in; default DefaultUser and DefaultPassword.
	User, Password string

	// Idle opens and authenticates the connections and holds them for
	// Duration without sending requests.
	Idle bool
	// Conns is the number of connections (default 1).
	Conns int
	// InFlight is the number of requests awaiting their reply on each
	// connection (default 1).
	InFlight int
	// Duration bounds the sending (load) or is the hold time (idle);
	// default DefaultDuration, at most MaxDuration.
	Duration time.Duration
	// Requests stops after this many requests in all; 0 means until
	// Duration.
	Requests int64
	// PkgID is the package of the requests (pkgroute; default 10, PING).
	PkgID int64
	// Method is the rpc method (centrifuge); empty is allowed.
	Method string
	// Data is the JSON object sent as data; default {}.
	Data json.RawMessage
	// Size, when positive, adds a string member "pad" of Size bytes to
	// Data.
	Size int

	// PID is the server's process id on this machine: its CPU time and
	// resident memory are sampled from /proc before and after. 0: none.
	PID int
	// MetricsURL is a Prometheus text endpoint read for go_goroutines in
	// idle mode; default the /metrics of URL's host. A failing read only
	// leaves the figure out.
	MetricsURL string
	// AllowRemote allows targets that are not loopback addresses.
	AllowRemote bool

	// DialConcurrency bounds the connections opened at once (default 32).
	DialConcurrency int
	// DialTimeout bounds one connection's dial and handshake (default 10 s).
	DialTimeout time.Duration
	// SetupTimeout bounds the opening of all connections (default 2 min).
	SetupTimeout time.Duration
	// DrainTimeout is how long outstanding replies are awaited once
	// sending stopped (default 5 s); later ones count as unanswered.
	DrainTimeout time.Duration
	// SourceAddrs spreads the connections over the source addresses
	// 127.0.0.1 to 127.0.0.<SourceAddrs>, so that many connections to one
	// loopback port do not run out of ephemeral ports; 0 means one
	// address per 5,000 connections (IPv4 loopback targets only).
	SourceAddrs int

	// Logf, when set, receives progress lines.
	Logf func(format string, args ...any)
}

// ErrInvalidConfig wraps every configuration error.
var ErrInvalidConfig = errors.New("load: invalid configuration")

// ErrNotLoopback is returned for a target that is not a loopback address
// while AllowRemote is false.
var ErrNotLoopback = errors.New("load: target is not a loopback address (use -allow-remote)")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
}

// withDefaults validates c and fills in the defaults.
func (c LoadConfig) withDefaults() (LoadConfig, error) {
	if c.URL == "" {
		return c, invalid("url is required")
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return c, invalid("url: %v", err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return c, invalid("url must be ws:// or wss://, got %q", c.URL)
	}
	if u.Host == "" {
		return c, invalid("url has no host: %q", c.URL)
	}
	switch c.Protocol {
	case "":
		c.Protocol = ProtocolPkgroute
	case ProtocolPkgroute, ProtocolCentrifuge:
	default:
		return c, invalid("protocol must be %s or %s, got %q", ProtocolPkgroute, ProtocolCentrifuge, c.Protocol)
	}
	switch c.Auth {
	case "":
		c.Auth = AuthHeader
	case AuthHeader, AuthFirstMessage, AuthNone:
	default:
		return c, invalid("auth must be %s, %s or %s, got %q", AuthHeader, AuthFirstMessage, AuthNone, c.Auth)
	}
	httpScheme := "http"
	if u.Scheme == "wss" {
		httpScheme = "https"
	}
	if c.LoginURL == "" {
		c.LoginURL = httpScheme + "://" + u.Host + "/auth/login"
	}
	if c.MetricsURL == "" {
		c.MetricsURL = httpScheme + "://" + u.Host + "/metrics"
	}
	for _, s := range []string{c.LoginURL, c.MetricsURL} {
		v, err := url.Parse(s)
		if err != nil || (v.Scheme != "http" && v.Scheme != "https") || v.Host == "" {
			return c, invalid("not an http(s) URL: %q", s)
		}
	}
	if c.User == "" {
		c.User = DefaultUser
	}
	if c.Password == "" {
		c.Password = DefaultPassword
	}
	if c.Conns == 0 {
		c.Conns = 1
	}
	if c.Conns < 0 || c.Conns > MaxConns {
		return c, invalid("conns must be 1..%d, got %d", MaxConns, c.Conns)
	}
	if c.InFlight == 0 {
		c.InFlight = 1
	}
	if c.InFlight < 0 || c.InFlight > MaxInFlight {
		return c, invalid("in-flight must be 1..%d, got %d", MaxInFlight, c.InFlight)
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.Duration < 0 || c.Duration > MaxDuration {
		return c, invalid("duration must be above 0 and at most %s, got %s", MaxDuration, c.Duration)
	}
	if c.Requests < 0 {
		return c, invalid("requests must not be negative, got %d", c.Requests)
	}
	if c.Idle && c.Requests > 0 {
		return c, invalid("idle mode sends no requests")
	}
	if c.PkgID == 0 {
		c.PkgID = DefaultPkgID
	}
	if c.Size < 0 || c.Size > MaxSize {
		return c, invalid("size must be 0..%d, got %d", MaxSize, c.Size)
	}
	data, err := buildData(c.Data, c.Size)
	if err != nil {
		return c, err
	}
	c.Data = data
	if c.PID < 0 {
		return c, invalid("pid must not be negative, got %d", c.PID)
	}
	if c.DialConcurrency == 0 {
		c.DialConcurrency = DefaultDialConcurrency
	}
	if c.DialConcurrency < 0 {
		return c, invalid("dial concurrency must be positive, got %d", c.DialConcurrency)
	}
	def := func(d *time.Duration, v time.Duration, name string) error {
		if *d == 0 {
			*d = v
		}
		if *d < 0 || *d > MaxDuration {
			return invalid("%s must be above 0 and at most %s, got %s", name, MaxDuration, *d)
		}
		return nil
	}
	if err := errors.Join(
		def(&c.DialTimeout, DefaultDialTimeout, "dial timeout"),
		def(&c.SetupTimeout, DefaultSetupTimeout, "setup timeout"),
		def(&c.DrainTimeout, DefaultDrainTimeout, "drain timeout"),
	); err != nil {
		return c, err
	}
	if c.SourceAddrs < 0 || c.SourceAddrs > MaxSourceAddrs {
		return c, invalid("source addresses must be 0..%d, got %d", MaxSourceAddrs, c.SourceAddrs)
	}
	return c, nil
}

// buildData checks that data is a JSON object (default {}) and adds the
// "pad" member of size bytes when size is positive.
func buildData(data json.RawMessage, size int) (json.RawMessage, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 {
		data = json.RawMessage("{}")
	}
	if !json.Valid(data) || data[0] != '{' {
		return nil, invalid("data must be a JSON object, got %.40q", data)
	}
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, invalid("data: %v", err)
	}
	if size == 0 {
		return data, nil
	}
	if _, ok := probe["pad"]; ok {
		return nil, invalid(`data already has a "pad" member; size adds one`)
	}
	out := make([]byte, 0, len(data)+size+10)
	out = append(out, `{"pad":"`...)
	out = append(out, strings.Repeat("x", size)...)
	out = append(out, '"')
	if len(probe) > 0 {
		out = append(out, ',')
		out = append(out, bytes.TrimSpace(data[1:])...)
	} else {
		out = append(out, '}')
	}
	return out, nil
}

// checkTargets refuses targets that are not loopback addresses (every
// address a name resolves to must be), unless AllowRemote.
func (c LoadConfig) checkTargets(ctx context.Context) error {
	if c.AllowRemote {
		return nil
	}
	urls := []string{c.URL}
	if c.Auth != AuthNone && c.Token == "" {
		urls = append(urls, c.LoginURL)
	}
	if c.Idle {
		urls = append(urls, c.MetricsURL)
	}
	for _, s := range urls {
		u, err := url.Parse(s)
		if err != nil {
			return invalid("%v", err)
		}
		if err := checkLoopback(ctx, u.Hostname()); err != nil {
			return fmt.Errorf("%w: %s", err, s)
		}
	}
	return nil
}

// checkLoopback accepts a loopback IP, or a name all of whose addresses
// are loopback.
func checkLoopback(ctx context.Context, host string) error {
	if ip := net.ParseIP(host); ip != nil {
		if ip.IsLoopback() {
			return nil
		}
		return ErrNotLoopback
	}
	if host == "" {
		return ErrNotLoopback
	}
	addrs, err := net.DefaultResolver.LookupIPAddr(ctx, host)
	if err != nil {
		return fmt.Errorf("%w (%v)", ErrNotLoopback, err)
	}
	for _, a := range addrs {
		if !a.IP.IsLoopback() {
			return ErrNotLoopback
		}
	}
	if len(addrs) == 0 {
		return ErrNotLoopback
	}
	return nil
}

package keycloak

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"

	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/internal/errkind"
	"github.com/pkgroute/pkgroute/internal/promreg"
)

// Defaults of ClientConfig.
const (
	DefaultClientTimeout    = 10 * time.Second
	DefaultFailureThreshold = 5
	DefaultOpenTimeout      = 60 * time.Second
)

// maxTokenResponseBytes caps the token endpoint's answer.
const maxTokenResponseBytes = 1 << 20

// ErrUnavailable means the identity provider could not answer: a
// connection error, a timeout, a 5xx, or the circuit breaker is open.
// Errors wrapping it have kind errkind.Unavailable and implement
// RetryAfter() time.Duration.
var ErrUnavailable = errkind.New(errkind.Unavailable, "identity provider unavailable")

// ClientConfig configures a Client. BaseURL, Realm and ClientID are
// required; every other zero value means the documented default.
type ClientConfig struct {
	// BaseURL is the Keycloak root, e.g. "https://sso.example.com".
	BaseURL string
	// Realm is the realm name.
	Realm string
	// ClientID is the client the tokens are requested for.
	ClientID string
	// ClientSecret is sent (client_secret_post) when set: confidential
	// clients need it, public clients leave it empty.
	ClientSecret string
	// TokenURL overrides the token endpoint; default
	// BaseURL/realms/Realm/protocol/openid-connect/token.
	TokenURL string
	// Scope is sent as the scope parameter when set.
	Scope string
	// HTTPClient makes the requests; default a private client. Each call is
	// bounded by Timeout.
	HTTPClient *http.Client
	// Timeout bounds one call to the token endpoint; default 10 s.
	Timeout time.Duration
	// FailureThreshold is the number of consecutive infrastructure failures
	// (connection errors, timeouts, 5xx) that opens the breaker; default 5.
	FailureThreshold uint32
	// OpenTimeout is how long the breaker stays open before one half-open
	// probe; default 60 s.
	OpenTimeout time.Duration
	// ServiceName is the breaker's service label; default "keycloak".
	ServiceName string
	// Logger receives breaker transitions and identity provider failures;
	// nil discards.
	Logger *slog.Logger
	// Registerer receives keycloak_auth_attempts_total,
	// keycloak_operation_duration_seconds, circuit_breaker_state and
	// circuit_breaker_state_changes_total; nil means no metrics.
	Registerer prometheus.Registerer
}

// Client logs users in at a Keycloak realm's token endpoint (password and
// refresh grants) behind a circuit breaker. It is safe for concurrent use.
type Client struct {
	cfg      ClientConfig
	tokenURL string
	http     *http.Client
	ownsHTTP bool
	log      *slog.Logger
	breaker  *gobreaker.CircuitBreaker[[]byte]

	mu       sync.Mutex
	openedAt time.Time

	success, failure, failed prometheus.Counter
	duration                 *prometheus.HistogramVec
	state                    prometheus.Gauge
	changes                  *prometheus.CounterVec
}

// NewClient validates cfg and returns a Client with a closed breaker.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.BaseURL == "" && cfg.TokenURL == "" || cfg.Realm == "" || cfg.ClientID == "" {
		return nil, errors.New("keycloak: BaseURL (or TokenURL), Realm and ClientID are required")
	}
	if strings.ContainsAny(cfg.Realm, "/?#") {
		return nil, fmt.Errorf("keycloak: invalid realm %q", cfg.Realm)
	}
	cfg.Timeout = orDefault(cfg.Timeout, DefaultClientTimeout)
	cfg.OpenTimeout = orDefault(cfg.OpenTimeout, DefaultOpenTimeout)
	if cfg.FailureThreshold == 0 {
		cfg.FailureThreshold = DefaultFailureThreshold
	}
	if cfg.ServiceName == "" {
		cfg.ServiceName = "keycloak"
	}
	c := &Client{cfg: cfg, tokenURL: cfg.TokenURL, http: cfg.HTTPClient, log: cfg.Logger}
	if c.tokenURL == "" {
		c.tokenURL = strings.TrimRight(cfg.BaseURL, "/") + "/realms/" + cfg.Realm + "/protocol/openid-connect/token"
	}
	if c.http == nil {
		c.http = &http.Client{
			Transport: http.DefaultTransport.(*http.Transport).Clone(),
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse // a token endpoint does not redirect
			},
		}
		c.ownsHTTP = true
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if err := c.initMetrics(cfg.Registerer); err != nil {
		return nil, err
	}
	c.breaker = gobreaker.NewCircuitBreaker[[]byte](gobreaker.Settings{
		Name:        cfg.ServiceName,
		MaxRequests: 1,
		Timeout:     cfg.OpenTimeout,
		ReadyToTrip: func(counts gobreaker.Counts) bool {
			return counts.ConsecutiveFailures >= cfg.FailureThreshold
		},
		IsSuccessful: func(err error) bool {
			// The identity provider answered: a refused credential is not
			// a failure of the provider.
			return err == nil || errors.Is(err, auth.ErrInvalidCredentials)
		},
		IsExcluded: func(err error) bool {
			var n neutral
			return errors.As(err, &n)
		},
		OnStateChange: c.onStateChange,
	})
	return c, nil
}

func (c *Client) initMetrics(reg prometheus.Registerer) error {
	attempts, err := promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "keycloak_auth_attempts_total",
		Help: "Login and refresh attempts at the identity provider by outcome (success, failure, error).",
	}, []string{"status"}))
	if err != nil {
		return fmt.Errorf("keycloak: metrics: %w", err)
	}
	c.duration, err = promreg.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "keycloak_operation_duration_seconds",
		Help:    "Duration of calls to the identity provider by operation.",
		Buckets: prometheus.DefBuckets,
	}, []string{"operation"}))
	if err != nil {
		return fmt.Errorf("keycloak: metrics: %w", err)
	}
	state, err := promreg.Register(reg, prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "circuit_breaker_state",
		Help: "Circuit breaker state by service: 0 closed, 1 open, 2 half-open.",
	}, []string{"service"}))
	if err != nil {
		return fmt.Errorf("keycloak: metrics: %w", err)
	}
	c.changes, err = promreg.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "circuit_breaker_state_changes_total",
		Help: "Circuit breaker transitions by service.",
	}, []string{"service", "from_state", "to_state"}))
	if err != nil {
		return fmt.Errorf("keycloak: metrics: %w", err)
	}
	c.success = attempts.WithLabelValues("success")
	c.failure = attempts.WithLabelValues("failure")
	c.failed = attempts.WithLabelValues("error")
	c.state = state.WithLabelValues(c.cfg.ServiceName)
	c.state.Set(0)
	return nil
}

func (c *Client) onStateChange(name string, from, to gobreaker.State) {
	if to == gobreaker.StateOpen {
		c.mu.Lock()
		c.openedAt = time.Now()
		c.mu.Unlock()
	}
	c.state.Set(float64(stateValue(to)))
	c.changes.WithLabelValues(name, from.String(), to.String()).Inc()
	level := slog.LevelInfo
	if to == gobreaker.StateOpen {
		level = slog.LevelWarn
	}
	c.log.Log(context.Background(), level, "keycloak: circuit breaker state changed",
		"service", name, "from", from.String(), "to", to.String())
}

// stateValue is the circuit_breaker_state value of s.
func stateValue(s gobreaker.State) int {
	switch s {
	case gobreaker.StateOpen:
		return 1
	case gobreaker.StateHalfOpen:
		return 2
	default:
		return 0
	}
}

// BreakerState returns the breaker's state: "closed", "open" or
// "half-open".
func (c *Client) BreakerState() string { return c.breaker.State().String() }

// Close closes the idle connections of the client's own HTTP client.
func (c *Client) Close() error {
	if c.ownsHTTP {
		c.http.CloseIdleConnections()
	}
	return nil
}

// Login performs the password grant and returns the token response body
// unchanged. Wrong credentials wrap auth.ErrInvalidCredentials; an
// unavailable identity provider (or an open breaker, without calling it)
// wraps ErrUnavailable.
func (c *Client) Login(ctx context.Context, username, password string) (json.RawMessage, error) {
	if username == "" || password == "" {
		c.failure.Inc()
		return nil, fmt.Errorf("%w: username and password are required", auth.ErrInvalidCredentials)
	}
	form := url.Values{"grant_type": {"password"}, "username": {username}, "password": {password}}
	return c.grant(ctx, "login", form)
}

// Refresh performs the refresh grant and returns the token response body
// unchanged. An invalid or expired refresh token wraps
// auth.ErrInvalidCredentials; failures of the identity provider wrap
// ErrUnavailable.
func (c *Client) Refresh(ctx context.Context, refreshToken string) (json.RawMessage, error) {
	if refreshToken == "" {
		c.failure.Inc()
		return nil, fmt.Errorf("%w: refresh token is required", auth.ErrInvalidCredentials)
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	return c.grant(ctx, "refresh", form)
}

func (c *Client) grant(ctx context.Context, op string, form url.Values) (json.RawMessage, error) {
	form.Set("client_id", c.cfg.ClientID)
	if c.cfg.ClientSecret != "" {
		form.Set("client_secret", c.cfg.ClientSecret)
	}
	if c.cfg.Scope != "" {
		form.Set("scope", c.cfg.Scope)
	}
	body, err := c.breaker.Execute(func() ([]byte, error) {
		start := time.Now()
		body, err := c.post(ctx, form)
		c.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
		return body, err
	})
	switch {
	case err == nil:
		c.success.Inc()
		return body, nil
	case errors.Is(err, auth.ErrInvalidCredentials):
		c.failure.Inc()
		return nil, err
	case errors.Is(err, gobreaker.ErrOpenState), errors.Is(err, gobreaker.ErrTooManyRequests):
		c.failed.Inc()
		return nil, &unavailableError{cause: err, retry: c.retryAfter()}
	default:
		c.failed.Inc()
		var n neutral
		if errors.As(err, &n) && n.caller {
			return nil, n.err // the caller gave up; not the provider's fault
		}
		c.log.WarnContext(ctx, "keycloak: token endpoint failed", "operation", op, "error", err)
		return nil, &unavailableError{cause: err, retry: c.retryAfter()}
	}
}

// retryAfter is the rest of the open period, or one second.
func (c *Client) retryAfter() time.Duration {
	if c.breaker.State() == gobreaker.StateOpen {
		c.mu.Lock()
		left := time.Until(c.openedAt.Add(c.cfg.OpenTimeout))
		c.mu.Unlock()
		if left > time.Second {
			return left.Round(time.Second)
		}
	}
	return time.Second
}

// neutral marks an error the breaker neither counts as a failure nor as a
// success: the caller cancelled, or the provider asked to slow down.
type neutral struct {
	err    error
	caller bool
}

func (n neutral) Error() string { return n.err.Error() }
func (n neutral) Unwrap() error { return n.err }

func (c *Client) post(ctx context.Context, form url.Values) ([]byte, error) {
	callCtx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(callCtx, http.MethodPost, c.tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, neutral{err: ctx.Err(), caller: true}
		}
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxTokenResponseBytes+1))
	if err != nil {
		if ctx.Err() != nil {
			return nil, neutral{err: ctx.Err(), caller: true}
		}
		return nil, fmt.Errorf("read token response: %w", err)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		if len(body) > maxTokenResponseBytes || !json.Valid(body) {
			return nil, errors.New("token endpoint answered 200 without a JSON body")
		}
		return body, nil
	case resp.StatusCode == http.StatusTooManyRequests:
		return nil, neutral{err: errors.New("token endpoint answered 429")}
	case resp.StatusCode >= 400 && resp.StatusCode < 500:
		var oe struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		_ = json.Unmarshal(body, &oe)
		if oe.Error == "invalid_client" || oe.Error == "unauthorized_client" {
			c.log.ErrorContext(ctx, "keycloak: the token endpoint refused this client; check the client id and secret",
				"status", resp.StatusCode, "error", oe.Error)
		}
		return nil, fmt.Errorf("%w: %s (HTTP %d)", auth.ErrInvalidCredentials, cmpStr(oe.Error, "refused"), resp.StatusCode)
	default:
		return nil, fmt.Errorf("token endpoint answered HTTP %d", resp.StatusCode)
	}
}

func cmpStr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// unavailableError is returned when the identity provider cannot answer.
type unavailableError struct {
	cause error
	retry time.Duration
}

// Error returns "identity provider unavailable" without the cause, which
// names hosts and addresses: the error reaches clients as a message.
// Unwrap gives the cause, and the client logs it.
func (e *unavailableError) Error() string {
	return "identity provider unavailable"
}

func (e *unavailableError) Unwrap() []error { return []error{ErrUnavailable, e.cause} }

// ErrorKind reports errkind.Unavailable.
func (e *unavailableError) ErrorKind() errkind.Kind { return errkind.Unavailable }

// RetryAfter is when to try again: the rest of the breaker's open period,
// or one second.
func (e *unavailableError) RetryAfter() time.Duration { return e.retry }

package keycloak

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/internal/promreg"
)

// Defaults of Config.
const (
	DefaultLeeway          = 30 * time.Second
	DefaultRefreshInterval = 15 * time.Minute
	DefaultRefreshCooldown = 10 * time.Second
	DefaultFetchTimeout    = 2 * time.Second
	DefaultCacheSize       = 10000
)

// algorithms are the pinned signature algorithms.
var algorithms = []string{"RS256", "ES256"}

// Config configures a Verifier. BaseURL, Realm and ClientID are required;
// every other zero value means the documented default.
type Config struct {
	// BaseURL is the Keycloak root, e.g. "https://sso.example.com"; the
	// expected iss is BaseURL + "/realms/" + Realm.
	BaseURL string
	// Realm is the realm name.
	Realm string
	// ClientID is this service's client: tokens must name it in azp or aud,
	// and roles are read from resource_access[ClientID].roles.
	ClientID string
	// JWKSURL overrides where the keys are fetched from; default
	// BaseURL/realms/Realm/protocol/openid-connect/certs. Useful when the
	// service reaches the identity provider at another address than the
	// one in iss (a development issuer, a private network name).
	JWKSURL string
	// Leeway is the clock skew allowed on exp, nbf and iat; default 30 s,
	// negative for none.
	Leeway time.Duration
	// RealmRoles adds realm_access.roles to the principal's roles.
	RealmRoles bool
	// HTTPClient fetches the key set; default a private client. Each fetch
	// is bounded by FetchTimeout.
	HTTPClient *http.Client
	// RefreshInterval is the period of Run's background refresh; default
	// 15 minutes.
	RefreshInterval time.Duration
	// RefreshCooldown is the minimum time between two fetches caused by
	// unknown kids; default 10 s.
	RefreshCooldown time.Duration
	// FetchTimeout bounds one key set fetch; default 2 s.
	FetchTimeout time.Duration
	// CacheSize is the number of verified tokens kept (by SHA-256, until
	// they expire); default 10000, negative disables the cache.
	CacheSize int
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger receives key set events; nil discards.
	Logger *slog.Logger
	// Registerer receives auth_token_validations_total and
	// auth_jwks_refresh_total; nil means no metrics.
	Registerer prometheus.Registerer
}

// Verifier verifies Keycloak access tokens. It implements
// auth.Authenticator and is safe for concurrent use. Run keeps its key set
// fresh; Close stops Run and releases idle connections.
type Verifier struct {
	cfg      Config
	issuer   string
	jwksURL  string
	client   *http.Client
	ownsHTTP bool
	log      *slog.Logger
	parser   *jwt.Parser
	cache    *tokenCache

	keys atomic.Pointer[keySet]

	mu        sync.Mutex
	inflight  chan struct{} // non-nil while a fetch runs; closed when it ends
	lastFetch time.Time

	closeOnce sync.Once
	closed    chan struct{}

	valid, expired, invalid, failed prometheus.Counter
	refreshOK, refreshErr           prometheus.Counter
}

// Validation outcomes, the status label of auth_token_validations_total.
const (
	statusValid   = "valid"
	statusExpired = "expired"
	statusInvalid = "invalid"
	statusError   = "error"
)

// NewVerifier validates cfg and fetches the key set once with ctx. A failed
// first fetch is logged, not returned: the verifier then fetches on the
// first token (within the cooldown rule), so a service can start before its
// identity provider.
func NewVerifier(ctx context.Context, cfg Config) (*Verifier, error) {
	if cfg.BaseURL == "" || cfg.Realm == "" || cfg.ClientID == "" {
		return nil, errors.New("keycloak: BaseURL, Realm and ClientID are required")
	}
	if strings.ContainsAny(cfg.Realm, "/?#") {
		return nil, fmt.Errorf("keycloak: invalid realm %q", cfg.Realm)
	}
	switch {
	case cfg.Leeway == 0:
		cfg.Leeway = DefaultLeeway
	case cfg.Leeway < 0:
		cfg.Leeway = 0
	}
	cfg.RefreshInterval = orDefault(cfg.RefreshInterval, DefaultRefreshInterval)
	cfg.RefreshCooldown = orDefault(cfg.RefreshCooldown, DefaultRefreshCooldown)
	cfg.FetchTimeout = orDefault(cfg.FetchTimeout, DefaultFetchTimeout)
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	v := &Verifier{
		cfg:    cfg,
		issuer: strings.TrimRight(cfg.BaseURL, "/") + "/realms/" + cfg.Realm,
		client: cfg.HTTPClient,
		log:    cfg.Logger,
		closed: make(chan struct{}),
	}
	v.jwksURL = cfg.JWKSURL
	if v.jwksURL == "" {
		v.jwksURL = v.issuer + "/protocol/openid-connect/certs"
	}
	if v.client == nil {
		v.client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		v.ownsHTTP = true
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	if cfg.CacheSize > 0 {
		v.cache = newTokenCache(cfg.CacheSize)
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods(algorithms),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(v.issuer),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithTimeFunc(cfg.Now),
		jwt.WithStrictDecoding(),
	)
	empty := keySet{}
	v.keys.Store(&empty)

	validations, err := promreg.Register(cfg.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "auth_token_validations_total",
		Help: "Bearer token validations by outcome (valid, expired, invalid, error).",
	}, []string{"status"}))
	if err != nil {
		return nil, fmt.Errorf("keycloak: metrics: %w", err)
	}
	refreshes, err := promreg.Register(cfg.Registerer, prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "auth_jwks_refresh_total",
		Help: "JWKS fetches by outcome (success, error).",
	}, []string{"outcome"}))
	if err != nil {
		return nil, fmt.Errorf("keycloak: metrics: %w", err)
	}
	v.valid = validations.WithLabelValues(statusValid)
	v.expired = validations.WithLabelValues(statusExpired)
	v.invalid = validations.WithLabelValues(statusInvalid)
	v.failed = validations.WithLabelValues(statusError)
	v.refreshOK = refreshes.WithLabelValues("success")
	v.refreshErr = refreshes.WithLabelValues("error")

	v.mu.Lock()
	v.lastFetch = cfg.Now()
	v.mu.Unlock()
	if err := v.fetch(ctx); err != nil {
		v.log.WarnContext(ctx, "keycloak: initial key set fetch failed", "url", v.jwksURL, "error", err)
	}
	return v, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Issuer returns the expected iss of tokens.
func (v *Verifier) Issuer() string { return v.issuer }

// Refresh fetches the key set now, whatever the cooldown. On failure the
// previous keys stay in use.
func (v *Verifier) Refresh(ctx context.Context) error {
	v.mu.Lock()
	v.lastFetch = v.cfg.Now()
	v.mu.Unlock()
	return v.fetch(ctx)
}

// Run refreshes the key set every RefreshInterval until ctx is done or
// Close is called. It returns nil.
func (v *Verifier) Run(ctx context.Context) error {
	t := time.NewTicker(v.cfg.RefreshInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-v.closed:
			return nil
		case <-t.C:
			if err := v.Refresh(ctx); err != nil {
				v.log.WarnContext(ctx, "keycloak: key set refresh failed, keeping the previous keys", "url", v.jwksURL, "error", err)
			}
		}
	}
}

// Close stops Run and closes the idle connections of the verifier's own
// HTTP client. Authenticate keeps working with the cached keys.
func (v *Verifier) Close() error {
	v.closeOnce.Do(func() { close(v.closed) })
	if v.ownsHTTP {
		v.client.CloseIdleConnections()
	}
	return nil
}

// fetch downloads the key set and installs it if it parses. It does not
// look at the cooldown.
func (v *Verifier) fetch(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, v.cfg.FetchTimeout)
	defer cancel()
	keys, skipped, err := fetchJWKS(ctx, v.client, v.jwksURL)
	for _, s := range skipped {
		v.log.DebugContext(ctx, "keycloak: skipped JWKS entry", "reason", s)
	}
	if err != nil {
		v.refreshErr.Inc()
		return fmt.Errorf("keycloak: fetch %s: %w", v.jwksURL, err)
	}
	v.refreshOK.Inc()
	old := *v.keys.Load()
	v.keys.Store(&keys)
	if v.cache != nil {
		for kid := range old {
			if _, still := keys[kid]; !still {
				v.cache.purge() // a withdrawn key must stop vouching for cached tokens
				break
			}
		}
	}
	return nil
}

var (
	errUnknownKey  = errors.New("unknown signing key")
	errKeysMissing = errors.New("unknown signing key and the key set could not be fetched")
)

// key returns the key for kid, fetching the key set when kid is unknown,
// no fetch ran within the cooldown, and none is in flight; concurrent
// misses wait for the fetch in flight instead of starting their own.
func (v *Verifier) key(ctx context.Context, kid string) (verificationKey, error) {
	if k, ok := (*v.keys.Load())[kid]; ok {
		return k, nil
	}
	v.mu.Lock()
	if k, ok := (*v.keys.Load())[kid]; ok {
		v.mu.Unlock()
		return k, nil
	}
	if ch := v.inflight; ch != nil {
		v.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return verificationKey{}, ctx.Err()
		}
		if k, ok := (*v.keys.Load())[kid]; ok {
			return k, nil
		}
		return verificationKey{}, errUnknownKey
	}
	now := v.cfg.Now()
	if now.Sub(v.lastFetch) < v.cfg.RefreshCooldown {
		v.mu.Unlock()
		return verificationKey{}, errUnknownKey
	}
	ch := make(chan struct{})
	v.inflight, v.lastFetch = ch, now
	v.mu.Unlock()

	// The fetch serves every waiter, so it does not stop when this caller's
	// context does; FetchTimeout bounds it.
	err := v.fetch(context.WithoutCancel(ctx))
	v.mu.Lock()
	v.inflight = nil
	close(ch)
	v.mu.Unlock()
	if err != nil {
		v.log.WarnContext(ctx, "keycloak: key set refresh for an unknown kid failed", "error", err)
	}
	if k, ok := (*v.keys.Load())[kid]; ok {
		return k, nil
	}
	if err != nil {
		return verificationKey{}, errKeysMissing
	}
	return verificationKey{}, errUnknownKey
}

// claims are the parts of a Keycloak access token the verifier reads. It
// implements jwt.Claims with dates that must be JSON numbers (RFC 7519
// NumericDate); jwt.RegisteredClaims would also accept strings.
type claims struct {
	Issuer            string           `json:"iss"`
	Subject           string           `json:"sub"`
	Audience          jwt.ClaimStrings `json:"aud"`
	ExpiresAt         numericDate      `json:"exp"`
	NotBefore         numericDate      `json:"nbf"`
	IssuedAt          numericDate      `json:"iat"`
	Type              string           `json:"typ"`
	AuthorizedParty   string           `json:"azp"`
	PreferredUsername string           `json:"preferred_username"`
	RealmAccess       struct {
		Roles []string `json:"roles"`
	} `json:"realm_access"`
	ResourceAccess map[string]struct {
		Roles []string `json:"roles"`
	} `json:"resource_access"`
}

// Authenticate verifies token (without the "Bearer " scheme) and returns
// its principal. Errors wrap auth.ErrNoToken, auth.ErrTokenDecode,
// auth.ErrTokenExpired or auth.ErrInvalidCredentials. The principal's
// RawClaims decodes the token payload on each call, numbers as
// json.Number. Principals may share their Roles slice with the cache: treat
// them as read-only.
func (v *Verifier) Authenticate(ctx context.Context, token string) (*auth.Principal, error) {
	p, status, err := v.authenticate(ctx, token)
	switch status {
	case statusValid:
		v.valid.Inc()
	case statusExpired:
		v.expired.Inc()
	case statusInvalid:
		v.invalid.Inc()
	default:
		v.failed.Inc()
	}
	return p, err
}

func (v *Verifier) authenticate(ctx context.Context, token string) (*auth.Principal, string, error) {
	switch {
	case token == "":
		return nil, statusInvalid, auth.ErrNoToken
	case len(token) > auth.MaxTokenBytes:
		return nil, statusInvalid, fmt.Errorf("%w: token longer than %d bytes", auth.ErrTokenDecode, auth.MaxTokenBytes)
	case strings.Count(token, ".") != 2:
		return nil, statusInvalid, fmt.Errorf("%w: token is not three segments", auth.ErrTokenDecode)
	}
	now := v.cfg.Now()
	if v.cache != nil {
		if p := v.cache.get(token, now); p != nil {
			return copyPrincipal(p), statusValid, nil
		}
	}

	var c claims
	_, err := v.parser.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		if _, ok := t.Header["crit"]; ok {
			return nil, errors.New("crit header not supported")
		}
		kid, _ := t.Header["kid"].(string)
		if kid == "" {
			return nil, errors.New("token has no kid")
		}
		k, err := v.key(ctx, kid)
		if err != nil {
			return nil, err
		}
		if k.alg != t.Method.Alg() {
			return nil, fmt.Errorf("key %q is for %s, token says %s", kid, k.alg, t.Method.Alg())
		}
		return k.pub, nil
	})
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, statusExpired, fmt.Errorf("%w: %v", auth.ErrTokenExpired, err)
	case errors.Is(err, jwt.ErrTokenMalformed):
		return nil, statusInvalid, fmt.Errorf("%w: %v", auth.ErrTokenDecode, err)
	case errors.Is(err, errKeysMissing), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return nil, statusError, fmt.Errorf("%w: %v", auth.ErrInvalidCredentials, err)
	default:
		return nil, statusInvalid, fmt.Errorf("%w: %v", auth.ErrInvalidCredentials, err)
	}

	if c.Type != "" && !strings.EqualFold(c.Type, "Bearer") {
		return nil, statusInvalid, fmt.Errorf("%w: token type %q is not Bearer", auth.ErrInvalidCredentials, c.Type)
	}
	if c.AuthorizedParty != v.cfg.ClientID && !slices.Contains(c.Audience, v.cfg.ClientID) {
		return nil, statusInvalid, fmt.Errorf("%w: token was not issued for client %q", auth.ErrInvalidCredentials, v.cfg.ClientID)
	}
	if c.Subject == "" {
		return nil, statusInvalid, fmt.Errorf("%w: token has no sub", auth.ErrInvalidCredentials)
	}

	roles := slices.Clone(c.ResourceAccess[v.cfg.ClientID].Roles)
	if v.cfg.RealmRoles {
		for _, r := range c.RealmAccess.Roles {
			if !slices.Contains(roles, r) {
				roles = append(roles, r)
			}
		}
	}
	if roles == nil {
		roles = []string{}
	}
	p := &auth.Principal{
		ID:        c.Subject,
		Username:  c.PreferredUsername,
		Roles:     slices.Clip(roles),
		ExpiresAt: c.ExpiresAt.d.Time,
		RawClaims: rawClaims(token),
	}
	if v.cache != nil {
		v.cache.put(token, p, p.ExpiresAt.Add(v.cfg.Leeway))
	}
	return copyPrincipal(p), statusValid, nil
}

// copyPrincipal returns a shallow copy so that callers cannot change the
// cached principal; the roles slice is clipped, so an append copies it.
func copyPrincipal(p *auth.Principal) *auth.Principal {
	cp := *p
	return &cp
}

// rawClaims decodes the verified token's payload when called.
func rawClaims(token string) func() map[string]any {
	return func() map[string]any {
		_, rest, _ := strings.Cut(token, ".")
		payload, _, _ := strings.Cut(rest, ".")
		b, err := base64.RawURLEncoding.DecodeString(payload)
		if err != nil {
			return nil
		}
		var m map[string]any
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil && !errors.Is(err, io.EOF) {
			return nil
		}
		return m
	}
}

// GetExpirationTime implements jwt.Claims.
func (c *claims) GetExpirationTime() (*jwt.NumericDate, error) { return c.ExpiresAt.d, nil }

// GetNotBefore implements jwt.Claims.
func (c *claims) GetNotBefore() (*jwt.NumericDate, error) { return c.NotBefore.d, nil }

// GetIssuedAt implements jwt.Claims.
func (c *claims) GetIssuedAt() (*jwt.NumericDate, error) { return c.IssuedAt.d, nil }

// GetIssuer implements jwt.Claims.
func (c *claims) GetIssuer() (string, error) { return c.Issuer, nil }

// GetSubject implements jwt.Claims.
func (c *claims) GetSubject() (string, error) { return c.Subject, nil }

// GetAudience implements jwt.Claims.
func (c *claims) GetAudience() (jwt.ClaimStrings, error) { return c.Audience, nil }

// numericDate is a NumericDate that must be a JSON number or null.
type numericDate struct{ d *jwt.NumericDate }

func (n *numericDate) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		n.d = nil
		return nil
	}
	if len(b) == 0 || (b[0] != '-' && (b[0] < '0' || b[0] > '9')) {
		return errors.New("date claim is not a number")
	}
	n.d = new(jwt.NumericDate)
	return n.d.UnmarshalJSON(b)
}

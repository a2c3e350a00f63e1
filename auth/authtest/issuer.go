package authtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// Algorithms the issuer can hold keys for.
const (
	RS256 = "RS256"
	ES256 = "ES256"
)

// Config configures an Issuer. The zero value is usable: realm "test",
// client "pkgroute", real clock, five-minute access tokens.
type Config struct {
	// BaseURL is the server root the realm lives under, e.g.
	// "http://localhost:8080" (the issuer is BaseURL + "/realms/" + Realm).
	// NewServer fills it in with the test server's URL.
	BaseURL string
	// Realm is the realm name; default "test".
	Realm string
	// ClientID is the client tokens are minted for (azp and the
	// resource_access key); default "pkgroute".
	ClientID string
	// ClientSecret, when set, makes the client confidential: the token
	// endpoint then requires it (form field or HTTP Basic).
	ClientSecret string
	// Users is the user table of the token endpoint.
	Users []User
	// TokenTTL is the access-token lifetime; default 5 minutes.
	TokenTTL time.Duration
	// RefreshTTL is the refresh-token lifetime; default 30 minutes.
	RefreshTTL time.Duration
	// Now is the clock used for iat and exp; default time.Now.
	Now func() time.Time
}

// User is an entry of the token endpoint's user table.
type User struct {
	// Username is the login name and preferred_username.
	Username string
	// Password is compared verbatim.
	Password string
	// ID is the subject; default a UUID derived from Username.
	ID string
	// Roles are client roles (resource_access[client].roles).
	Roles []string
	// RealmRoles are realm roles (realm_access.roles).
	RealmRoles []string
	// Claims are extra claims merged into the user's access tokens.
	Claims map[string]any
}

type key struct {
	kid  string
	alg  string
	use  string
	priv crypto.Signer
}

// Issuer mints Keycloak-shaped tokens and serves the realm endpoints. It is
// safe for concurrent use.
type Issuer struct {
	realm, clientID, secret string
	tokenTTL, refreshTTL    time.Duration
	now                     func() time.Time

	mu      sync.RWMutex
	baseURL string
	keys    []*key
	current string
	users   map[string]User // by username
	fail    int
	hang    chan struct{} // non-nil while hanging; closed on release

	jwksRequests  atomic.Int64
	tokenRequests atomic.Int64
	discRequests  atomic.Int64
}

// New returns an Issuer with one RSA (RS256, the default signing key) and
// one EC P-256 (ES256) key.
func New(cfg Config) (*Issuer, error) {
	i := &Issuer{
		realm:      cmp(cfg.Realm, "test"),
		clientID:   cmp(cfg.ClientID, "pkgroute"),
		secret:     cfg.ClientSecret,
		tokenTTL:   cfg.TokenTTL,
		refreshTTL: cfg.RefreshTTL,
		now:        cfg.Now,
		baseURL:    strings.TrimRight(cfg.BaseURL, "/"),
		users:      make(map[string]User, len(cfg.Users)),
	}
	if i.tokenTTL <= 0 {
		i.tokenTTL = 5 * time.Minute
	}
	if i.refreshTTL <= 0 {
		i.refreshTTL = 30 * time.Minute
	}
	if i.now == nil {
		i.now = time.Now
	}
	for _, u := range cfg.Users {
		if u.Username == "" {
			return nil, errors.New("authtest: user without a username")
		}
		i.users[u.Username] = u
	}
	rsaKID, err := i.AddKey(RS256)
	if err != nil {
		return nil, err
	}
	if _, err := i.AddKey(ES256); err != nil {
		return nil, err
	}
	i.current = rsaKID
	return i, nil
}

func cmp(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// Realm returns the realm name.
func (i *Issuer) Realm() string { return i.realm }

// ClientID returns the client tokens are minted for.
func (i *Issuer) ClientID() string { return i.clientID }

// BaseURL returns the server root the realm lives under.
func (i *Issuer) BaseURL() string {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.baseURL
}

// SetBaseURL changes the server root (and so the issuer URL of new tokens).
func (i *Issuer) SetBaseURL(u string) {
	i.mu.Lock()
	i.baseURL = strings.TrimRight(u, "/")
	i.mu.Unlock()
}

// IssuerURL returns the realm URL, the iss of minted tokens.
func (i *Issuer) IssuerURL() string { return i.BaseURL() + "/realms/" + i.realm }

// JWKSURL returns the URL of the realm's key set.
func (i *Issuer) JWKSURL() string { return i.IssuerURL() + "/protocol/openid-connect/certs" }

// TokenURL returns the URL of the realm's token endpoint.
func (i *Issuer) TokenURL() string { return i.IssuerURL() + "/protocol/openid-connect/token" }

// AddKey generates a new signing key for alg (RS256 or ES256), publishes it
// in the JWKS and returns its kid. The default signing key is unchanged.
func (i *Issuer) AddKey(alg string) (string, error) {
	var priv crypto.Signer
	var err error
	switch alg {
	case RS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		return "", fmt.Errorf("authtest: unsupported key algorithm %q", alg)
	}
	if err != nil {
		return "", fmt.Errorf("authtest: generate %s key: %w", alg, err)
	}
	kid := strings.ToLower(alg) + "-" + uuid.NewString()[:8]
	i.mu.Lock()
	i.keys = append(i.keys, &key{kid: kid, alg: alg, use: "sig", priv: priv})
	i.mu.Unlock()
	return kid, nil
}

// Rotate adds a new RS256 key and makes it the default signing key. The
// previous keys stay published until RemoveKey, as in a Keycloak rotation.
func (i *Issuer) Rotate() (string, error) {
	kid, err := i.AddKey(RS256)
	if err != nil {
		return "", err
	}
	i.mu.Lock()
	i.current = kid
	i.mu.Unlock()
	return kid, nil
}

// RemoveKey stops publishing and using the key kid. Removing the default
// signing key makes the first remaining RS256 key the default.
func (i *Issuer) RemoveKey(kid string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.keys = slices.DeleteFunc(i.keys, func(k *key) bool { return k.kid == kid })
	if i.current == kid {
		i.current = ""
		for _, k := range i.keys {
			if k.alg == RS256 {
				i.current = k.kid
				break
			}
		}
	}
}

// SetKeyUse publishes the key kid with the given JWK use ("sig" or "enc").
func (i *Issuer) SetKeyUse(kid, use string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	for _, k := range i.keys {
		if k.kid == kid {
			k.use = use
		}
	}
}

// KeyID returns the kid of the default signing key.
func (i *Issuer) KeyID() string {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.current
}

// KeyIDs returns the kids of all keys of alg ("" for all), oldest first.
func (i *Issuer) KeyIDs(alg string) []string {
	i.mu.RLock()
	defer i.mu.RUnlock()
	var out []string
	for _, k := range i.keys {
		if alg == "" || k.alg == alg {
			out = append(out, k.kid)
		}
	}
	return out
}

// PublicKey returns the public key of kid, or nil.
func (i *Issuer) PublicKey(kid string) crypto.PublicKey {
	if k := i.key(kid); k != nil {
		return k.priv.Public()
	}
	return nil
}

func (i *Issuer) key(kid string) *key {
	i.mu.RLock()
	defer i.mu.RUnlock()
	for _, k := range i.keys {
		if k.kid == kid {
			return k
		}
	}
	return nil
}

// AddUser adds or replaces a user of the token endpoint's table.
func (i *Issuer) AddUser(u User) {
	i.mu.Lock()
	i.users[u.Username] = u
	i.mu.Unlock()
}

func subjectOf(username string) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte("authtest:"+username)).String()
}

// Claims returns the claims of a valid access token for username holding
// the given client roles: iss, sub, aud "account", azp, typ "Bearer", exp,
// iat, jti, preferred_username, resource_access, realm_access, scope. The
// subject is the table user's ID when the user exists. Edit the map to
// make any token.
func (i *Issuer) Claims(username string, roles ...string) jwt.MapClaims {
	sub := subjectOf(username)
	i.mu.RLock()
	if u, ok := i.users[username]; ok && u.ID != "" {
		sub = u.ID
	}
	i.mu.RUnlock()
	now := i.now()
	return jwt.MapClaims{
		"exp":                now.Add(i.tokenTTL).Unix(),
		"iat":                now.Unix(),
		"jti":                uuid.NewString(),
		"iss":                i.IssuerURL(),
		"aud":                "account",
		"sub":                sub,
		"typ":                "Bearer",
		"azp":                i.clientID,
		"session_state":      uuid.NewString(),
		"scope":              "profile email",
		"email_verified":     false,
		"preferred_username": username,
		"realm_access":       map[string]any{"roles": []string{"default-roles-" + i.realm}},
		"resource_access": map[string]any{
			i.clientID: map[string]any{"roles": slices.Clone(nonNil(roles))},
			"account":  map[string]any{"roles": []string{"manage-account", "view-profile"}},
		},
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (i *Issuer) userClaims(u User) jwt.MapClaims {
	c := i.Claims(u.Username, u.Roles...)
	if u.RealmRoles != nil {
		c["realm_access"] = map[string]any{"roles": slices.Clone(u.RealmRoles)}
	}
	maps.Copy(c, u.Claims)
	return c
}

// SignOption changes how Sign builds a token.
type SignOption func(*signOpts)

type signOpts struct {
	signKID   string
	headerKID *string
	alg       string
	hmacKey   []byte
	header    map[string]any
}

// WithKey signs with the key kid instead of the default signing key.
func WithKey(kid string) SignOption { return func(o *signOpts) { o.signKID = kid } }

// WithKeyID puts kid in the header without changing the signing key (an
// unknown kid, or one naming a key of another type). "" omits the header.
func WithKeyID(kid string) SignOption { return func(o *signOpts) { o.headerKID = &kid } }

// WithAlg sets the alg: "none" makes an unsigned token; an HMAC alg needs
// WithHMACKey; otherwise the signing key must fit it (RS* for RSA keys,
// ES256 for EC keys, PS* for RSA keys too).
func WithAlg(alg string) SignOption { return func(o *signOpts) { o.alg = alg } }

// WithHMACKey signs with HS256 (or the HMAC alg given to WithAlg) and secret,
// e.g. the RSA public key bytes of an algorithm-confusion attack.
func WithHMACKey(secret []byte) SignOption {
	return func(o *signOpts) {
		o.hmacKey = secret
		if o.alg == "" {
			o.alg = "HS256"
		}
	}
}

// WithHeader adds a header member (jku, jwk, x5u, typ...).
func WithHeader(name string, value any) SignOption {
	return func(o *signOpts) {
		if o.header == nil {
			o.header = map[string]any{}
		}
		o.header[name] = value
	}
}

// Sign signs claims and returns the compact token.
func (i *Issuer) Sign(claims jwt.MapClaims, opts ...SignOption) (string, error) {
	var o signOpts
	for _, f := range opts {
		f(&o)
	}
	var signKey any
	kid := ""
	switch {
	case o.alg == "none":
		signKey = jwt.UnsafeAllowNoneSignatureType
	case o.hmacKey != nil:
		signKey = o.hmacKey
	default:
		k := i.key(cmp(o.signKID, i.KeyID()))
		if k == nil {
			return "", fmt.Errorf("authtest: no key %q", cmp(o.signKID, i.KeyID()))
		}
		signKey, kid = k.priv, k.kid
		if o.alg == "" {
			o.alg = k.alg
		}
	}
	method := jwt.GetSigningMethod(o.alg)
	if method == nil {
		return "", fmt.Errorf("authtest: unknown alg %q", o.alg)
	}
	t := jwt.NewWithClaims(method, claims)
	if o.headerKID != nil {
		kid = *o.headerKID
	}
	if kid != "" {
		t.Header["kid"] = kid
	}
	maps.Copy(t.Header, o.header)
	return t.SignedString(signKey)
}

// Token returns a signed access token for username with client roles, as
// Claims and Sign make it. It panics if signing fails, which it does not
// with the issuer's own keys.
func (i *Issuer) Token(username string, roles ...string) string {
	s, err := i.Sign(i.Claims(username, roles...))
	if err != nil {
		panic(err)
	}
	return s
}

// JWKS returns the realm's JSON Web Key Set document.
func (i *Issuer) JWKS() []byte {
	i.mu.RLock()
	defer i.mu.RUnlock()
	keys := make([]map[string]any, 0, len(i.keys))
	for _, k := range i.keys {
		keys = append(keys, jwk(k))
	}
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		panic(err) // only strings in the map
	}
	return b
}

func jwk(k *key) map[string]any {
	m := map[string]any{"kid": k.kid, "alg": k.alg, "use": k.use}
	b64 := base64.RawURLEncoding.EncodeToString
	switch pub := k.priv.Public().(type) {
	case *rsa.PublicKey:
		m["kty"] = "RSA"
		m["n"] = b64(pub.N.Bytes())
		m["e"] = b64(big.NewInt(int64(pub.E)).Bytes())
	case *ecdsa.PublicKey:
		raw, err := pub.Bytes() // 0x04 || X || Y
		if err != nil {
			panic(err)
		}
		m["kty"] = "EC"
		m["crv"] = "P-256"
		m["x"] = b64(raw[1:33])
		m["y"] = b64(raw[33:65])
	}
	return m
}

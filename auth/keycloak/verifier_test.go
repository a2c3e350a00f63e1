package keycloak_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/auth/authtest"
	"github.com/pkgroute/pkgroute/auth/keycloak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// clock is real time plus an offset that tests move forward.
type clock struct{ off atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) Advance(d time.Duration) { c.off.Add(int64(d)) }

type fixture struct {
	iss   *authtest.Issuer
	v     *keycloak.Verifier
	reg   *prometheus.Registry
	clock *clock
}

func newFixture(t testing.TB, cfg keycloak.Config) *fixture {
	t.Helper()
	f := &fixture{
		iss:   authtest.NewServer(t, authtest.Config{Realm: "shop", ClientID: "authorsvc"}),
		reg:   prometheus.NewRegistry(),
		clock: &clock{},
	}
	f.verifier(t, cfg)
	return f
}

func (f *fixture) verifier(t testing.TB, cfg keycloak.Config) *keycloak.Verifier {
	t.Helper()
	cfg.BaseURL, cfg.Realm, cfg.ClientID = f.iss.BaseURL(), "shop", "authorsvc"
	if cfg.Now == nil {
		cfg.Now = f.clock.Now
	}
	if cfg.Registerer == nil {
		cfg.Registerer = f.reg
	}
	v, err := keycloak.NewVerifier(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = v.Close() })
	f.v = v
	return v
}

func (f *fixture) sign(t testing.TB, c jwt.MapClaims, opts ...authtest.SignOption) string {
	t.Helper()
	tok, err := f.iss.Sign(c, opts...)
	require.NoError(t, err)
	return tok
}

func (f *fixture) validations(status string) float64 {
	return testutil.ToFloat64(mustVec(f.reg, "auth_token_validations_total", status))
}

func (f *fixture) refreshes(outcome string) float64 {
	return testutil.ToFloat64(mustVec(f.reg, "auth_jwks_refresh_total", outcome))
}

// mustVec returns the counter with the given single label value, gathered
// from reg (0 when absent).
func mustVec(reg *prometheus.Registry, name, value string) prometheus.Collector {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
	mfs, _ := reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == value {
				c.Add(m.GetCounter().GetValue())
			}
		}
	}
	return c
}

func TestVerifyValidTokens(t *testing.T) {
	f := newFixture(t, keycloak.Config{})
	ctx := context.Background()

	tok := f.iss.Token("ada", "get-authors", "create-author")
	p, err := f.v.Authenticate(ctx, tok)
	require.NoError(t, err)
	assert.Equal(t, "ada", p.Username)
	assert.NotEmpty(t, p.ID)
	assert.Equal(t, []string{"get-authors", "create-author"}, p.Roles)
	assert.WithinDuration(t, time.Now().Add(5*time.Minute), p.ExpiresAt, 2*time.Second)
	assert.Equal(t, "authorsvc", p.Claims()["azp"])
	assert.Equal(t, f.iss.IssuerURL(), f.v.Issuer())

	ec := f.iss.KeyIDs(authtest.ES256)[0]
	p, err = f.v.Authenticate(ctx, f.sign(t, f.iss.Claims("bob", "r"), authtest.WithKey(ec)))
	require.NoError(t, err)
	assert.Equal(t, "bob", p.Username)

	// Another client's token that names this service in aud is accepted.
	c := f.iss.Claims("carl", "x")
	c["azp"], c["aud"] = "frontend", []string{"account", "authorsvc"}
	p, err = f.v.Authenticate(ctx, f.sign(t, c))
	require.NoError(t, err)
	assert.Equal(t, []string{"x"}, p.Roles)

	// Realm roles are off by default.
	c = f.iss.Claims("dora", "a")
	c["realm_access"] = map[string]any{"roles": []string{"admin", "a"}}
	tok = f.sign(t, c)
	p, err = f.v.Authenticate(ctx, tok)
	require.NoError(t, err)
	assert.Equal(t, []string{"a"}, p.Roles)

	withRealm := f.verifier(t, keycloak.Config{RealmRoles: true, Registerer: prometheus.NewRegistry()})
	p, err = withRealm.Authenticate(ctx, tok)
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "admin"}, p.Roles)

	// iat/nbf within the leeway pass.
	c = f.iss.Claims("eve")
	c["iat"] = time.Now().Add(20 * time.Second).Unix()
	c["nbf"] = time.Now().Add(20 * time.Second).Unix()
	_, err = withRealm.Authenticate(ctx, f.sign(t, c))
	require.NoError(t, err)

	assert.Equal(t, 4.0, f.validations("valid"))
}

func TestVerifyExpiryAndLeeway(t *testing.T) {
	f := newFixture(t, keycloak.Config{CacheSize: -1})
	ctx := context.Background()
	c := f.iss.Claims("ada")
	c["exp"] = time.Now().Add(-20 * time.Second).Unix()
	_, err := f.v.Authenticate(ctx, f.sign(t, c))
	require.NoError(t, err, "inside the 30 s leeway")

	c["exp"] = time.Now().Add(-31 * time.Second).Unix()
	_, err = f.v.Authenticate(ctx, f.sign(t, c))
	require.ErrorIs(t, err, auth.ErrTokenExpired)
	assert.Equal(t, "token_expired", auth.Reason(err))
	assert.Equal(t, 1.0, f.validations("expired"))

	strict := f.verifier(t, keycloak.Config{Leeway: -1, Registerer: prometheus.NewRegistry()})
	c["exp"] = time.Now().Add(-2 * time.Second).Unix()
	_, err = strict.Authenticate(ctx, f.sign(t, c))
	require.ErrorIs(t, err, auth.ErrTokenExpired)
}

func TestCachedTokenExpires(t *testing.T) {
	f := newFixture(t, keycloak.Config{})
	ctx := context.Background()
	tok := f.iss.Token("ada", "r")
	p1, err := f.v.Authenticate(ctx, tok)
	require.NoError(t, err)
	p2, err := f.v.Authenticate(ctx, tok)
	require.NoError(t, err)
	assert.Equal(t, p1.ID, p2.ID)
	assert.NotSame(t, p1, p2, "each caller gets its own principal")
	p2.Username = "changed"
	p3, err := f.v.Authenticate(ctx, tok)
	require.NoError(t, err)
	assert.Equal(t, "ada", p3.Username)

	f.clock.Advance(5*time.Minute + 20*time.Second) // exp plus 30 s leeway not reached
	_, err = f.v.Authenticate(ctx, tok)
	require.NoError(t, err)
	f.clock.Advance(11 * time.Second)
	_, err = f.v.Authenticate(ctx, tok)
	require.ErrorIs(t, err, auth.ErrTokenExpired)
}

func TestKeyRotationWithoutDowntime(t *testing.T) {
	f := newFixture(t, keycloak.Config{})
	ctx := context.Background()
	oldKID := f.iss.KeyID()
	oldTok := f.iss.Token("ada")
	_, err := f.v.Authenticate(ctx, oldTok)
	require.NoError(t, err)

	newKID, err := f.iss.Rotate()
	require.NoError(t, err)
	newTok := f.iss.Token("ada")

	// Within the cooldown after the start-up fetch the new kid is not fetched.
	_, err = f.v.Authenticate(ctx, newTok)
	require.ErrorIs(t, err, auth.ErrInvalidCredentials)
	assert.Equal(t, int64(1), f.iss.JWKSRequests())

	f.clock.Advance(11 * time.Second)
	_, err = f.v.Authenticate(ctx, newTok)
	require.NoError(t, err, "the unknown kid triggers one refresh")
	assert.Equal(t, int64(2), f.iss.JWKSRequests())
	_, err = f.v.Authenticate(ctx, oldTok)
	require.NoError(t, err, "the old key is still published")

	// Withdrawing the old key also drops the tokens cached under it.
	f.iss.RemoveKey(oldKID)
	require.NoError(t, f.v.Refresh(ctx))
	_, err = f.v.Authenticate(ctx, oldTok)
	require.ErrorIs(t, err, auth.ErrInvalidCredentials)
	_, err = f.v.Authenticate(ctx, newTok)
	require.NoError(t, err)
	assert.NotEqual(t, oldKID, newKID)
	assert.Equal(t, 3.0, f.refreshes("success"))
}

func TestRandomKidsCauseOneFetchPerCooldown(t *testing.T) {
	f := newFixture(t, keycloak.Config{})
	ctx := context.Background()
	f.clock.Advance(11 * time.Second)
	before := f.iss.JWKSRequests()

	var wg sync.WaitGroup
	var accepted atomic.Int64
	for range 20 {
		wg.Go(func() {
			for range 50 {
				tok := f.sign(t, f.iss.Claims("mallory"), authtest.WithKeyID(uuid.NewString()))
				if _, err := f.v.Authenticate(ctx, tok); err == nil {
					accepted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	assert.Zero(t, accepted.Load())
	assert.Equal(t, int64(1), f.iss.JWKSRequests()-before, "1,000 random kids, one fetch")

	f.clock.Advance(11 * time.Second)
	for range 100 {
		_, err := f.v.Authenticate(ctx, f.sign(t, f.iss.Claims("mallory"), authtest.WithKeyID(uuid.NewString())))
		require.Error(t, err)
	}
	assert.Equal(t, int64(2), f.iss.JWKSRequests()-before, "one more after the cooldown")
}

func TestConcurrentMissesAreCoalesced(t *testing.T) {
	f := newFixture(t, keycloak.Config{})
	ctx := context.Background()
	kid, err := f.iss.Rotate()
	require.NoError(t, err)
	f.clock.Advance(11 * time.Second)
	f.iss.Hang(true) // hold the fetch so that every request arrives while it is in flight
	before := f.iss.JWKSRequests()

	tok := f.sign(t, f.iss.Claims("ada"), authtest.WithKey(kid))
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for range 50 {
		wg.Go(func() {
			_, err := f.v.Authenticate(ctx, tok)
			errs <- err
		})
	}
	require.Eventually(t, func() bool { return f.iss.JWKSRequests() > before }, 2*time.Second, time.Millisecond)
	time.Sleep(50 * time.Millisecond)
	f.iss.Hang(false)
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
	assert.Equal(t, int64(1), f.iss.JWKSRequests()-before)
}

func TestIdPDownKnownKeysKeepVerifying(t *testing.T) {
	f := newFixture(t, keycloak.Config{CacheSize: -1, FetchTimeout: 500 * time.Millisecond})
	ctx := context.Background()
	tok := f.iss.Token("ada")

	for _, fault := range []func(){
		func() { f.iss.Fail(http.StatusServiceUnavailable) },
		func() { f.iss.Fail(0); f.iss.Hang(true) },
	} {
		fault()
		require.Error(t, f.v.Refresh(ctx))
		_, err := f.v.Authenticate(ctx, tok)
		require.NoError(t, err)

		f.clock.Advance(11 * time.Second)
		_, err = f.v.Authenticate(ctx, f.sign(t, f.iss.Claims("ada"), authtest.WithKeyID("unknown")))
		require.ErrorIs(t, err, auth.ErrInvalidCredentials)
		_, err = f.v.Authenticate(ctx, tok)
		require.NoError(t, err)
	}
	f.iss.Hang(false)
	assert.Equal(t, 4.0, f.refreshes("error"))
	assert.Equal(t, 2.0, f.validations("error"), "an unknown kid with the key set unavailable")
}

func TestStartWithIdPDown(t *testing.T) {
	iss := authtest.NewServer(t, authtest.Config{ClientID: "authorsvc"})
	iss.Fail(http.StatusBadGateway)
	c := &clock{}
	v, err := keycloak.NewVerifier(context.Background(), keycloak.Config{
		BaseURL: iss.BaseURL(), Realm: "test", ClientID: "authorsvc", Now: c.Now,
	})
	require.NoError(t, err)
	defer v.Close()
	tok := iss.Token("ada")
	_, err = v.Authenticate(context.Background(), tok)
	require.Error(t, err)
	iss.Fail(0)
	c.Advance(11 * time.Second)
	_, err = v.Authenticate(context.Background(), tok)
	require.NoError(t, err)
}

func TestJWKSOverrideAndRun(t *testing.T) {
	iss, err := authtest.New(authtest.Config{BaseURL: "https://sso.example.com", Realm: "dev", ClientID: "app"})
	require.NoError(t, err)
	srv := httptest.NewServer(iss.Handler())
	defer srv.Close()
	v, err := keycloak.NewVerifier(context.Background(), keycloak.Config{
		BaseURL: "https://sso.example.com", Realm: "dev", ClientID: "app",
		JWKSURL:         srv.URL + "/realms/dev/protocol/openid-connect/certs",
		RefreshInterval: 20 * time.Millisecond,
	})
	require.NoError(t, err)
	_, err = v.Authenticate(context.Background(), iss.Token("ada"))
	require.NoError(t, err)

	done := make(chan error)
	go func() { done <- v.Run(context.Background()) }()
	require.Eventually(t, func() bool { return iss.JWKSRequests() >= 3 }, 2*time.Second, 5*time.Millisecond)
	require.NoError(t, v.Close())
	require.NoError(t, <-done)
	require.NoError(t, v.Run(context.Background()), "Run after Close returns at once")
}

func TestConfigValidation(t *testing.T) {
	for _, cfg := range []keycloak.Config{
		{Realm: "r", ClientID: "c"},
		{BaseURL: "http://x", ClientID: "c"},
		{BaseURL: "http://x", Realm: "r"},
		{BaseURL: "http://x", Realm: "a/b", ClientID: "c"},
	} {
		_, err := keycloak.NewVerifier(context.Background(), cfg)
		assert.Error(t, err)
	}
}

func TestSharedRegistry(t *testing.T) {
	f := newFixture(t, keycloak.Config{})
	second := f.verifier(t, keycloak.Config{})
	_, err := second.Authenticate(context.Background(), f.iss.Token("ada"))
	require.NoError(t, err)
	assert.Equal(t, 1.0, f.validations("valid"))
}

func TestBadKeySetKeepsTheOldKeys(t *testing.T) {
	iss, err := authtest.New(authtest.Config{Realm: "r", ClientID: "c"})
	require.NoError(t, err)
	var garbage atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if garbage.Load() {
			_, _ = w.Write([]byte(`{"keys":[{"kty":"RSA","kid":"x","n":"AQAB","e":"AQAB"}]}`))
			return
		}
		_, _ = w.Write(iss.JWKS())
	}))
	defer srv.Close()
	iss.SetBaseURL(srv.URL)
	v, err := keycloak.NewVerifier(context.Background(), keycloak.Config{BaseURL: srv.URL, Realm: "r", ClientID: "c", CacheSize: -1})
	require.NoError(t, err)
	defer v.Close()
	tok := iss.Token("ada")
	_, err = v.Authenticate(context.Background(), tok)
	require.NoError(t, err)

	garbage.Store(true)
	require.Error(t, v.Refresh(context.Background()))
	_, err = v.Authenticate(context.Background(), tok)
	require.NoError(t, err, "a key set without usable keys does not replace the old one")
}

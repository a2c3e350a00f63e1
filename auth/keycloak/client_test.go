package keycloak_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/auth/authtest"
	"github.com/pkgroute/pkgroute/auth/keycloak"
	"github.com/pkgroute/pkgroute/internal/errkind"
)

type clientFixture struct {
	iss *authtest.Issuer
	c   *keycloak.Client
	reg *prometheus.Registry
}

func newClientFixture(t *testing.T, icfg authtest.Config, cfg keycloak.ClientConfig) *clientFixture {
	t.Helper()
	icfg.Realm, icfg.ClientID = "shop", "authorsvc"
	icfg.Users = append(icfg.Users, authtest.User{Username: "ada", Password: "lovelace", Roles: []string{"get-authors"}})
	f := &clientFixture{iss: authtest.NewServer(t, icfg), reg: prometheus.NewRegistry()}
	cfg.BaseURL, cfg.Realm, cfg.ClientID, cfg.Registerer = f.iss.BaseURL(), "shop", "authorsvc", f.reg
	if cfg.OpenTimeout == 0 {
		cfg.OpenTimeout = 300 * time.Millisecond
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	c, err := keycloak.NewClient(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	f.c = c
	return f
}

func (f *clientFixture) attempts(status string) float64 {
	return testutil.ToFloat64(mustVec(f.reg, "keycloak_auth_attempts_total", status))
}

func (f *clientFixture) transitions() map[string]float64 {
	out := map[string]float64{}
	mfs, _ := f.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() != "circuit_breaker_state_changes_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			l := map[string]string{}
			for _, lp := range m.GetLabel() {
				l[lp.GetName()] = lp.GetValue()
			}
			out[l["from_state"]+"->"+l["to_state"]] = m.GetCounter().GetValue()
		}
	}
	return out
}

func (f *clientFixture) stateGauge() float64 {
	mfs, _ := f.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "circuit_breaker_state" {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}

func requireUnavailable(t *testing.T, err error) time.Duration {
	t.Helper()
	require.Error(t, err)
	require.ErrorIs(t, err, keycloak.ErrUnavailable)
	assert.Equal(t, errkind.Unavailable, errkind.Of(err))
	assert.Equal(t, "service_unavailable", errkind.Of(err).Code())
	assert.Equal(t, "identity provider unavailable", err.Error(), "the cause stays in the logs")
	d := errkind.RetryAfterOf(err)
	assert.Positive(t, d)
	return d
}

func TestLoginAndRefresh(t *testing.T) {
	f := newClientFixture(t, authtest.Config{}, keycloak.ClientConfig{})
	ctx := context.Background()
	raw, err := f.c.Login(ctx, "ada", "lovelace")
	require.NoError(t, err)
	var tr struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		TokenType    string `json:"token_type"`
	}
	require.NoError(t, json.Unmarshal(raw, &tr))
	assert.Equal(t, "Bearer", tr.TokenType)

	v, err := keycloak.NewVerifier(ctx, keycloak.Config{BaseURL: f.iss.BaseURL(), Realm: "shop", ClientID: "authorsvc"})
	require.NoError(t, err)
	defer v.Close()
	p, err := v.Authenticate(ctx, tr.AccessToken)
	require.NoError(t, err)
	assert.Equal(t, "ada", p.Username)
	assert.Equal(t, []string{"get-authors"}, p.Roles)

	raw, err = f.c.Refresh(ctx, tr.RefreshToken)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &tr))
	_, err = v.Authenticate(ctx, tr.AccessToken)
	require.NoError(t, err)

	_, err = f.c.Refresh(ctx, "not-a-refresh-token")
	require.ErrorIs(t, err, auth.ErrInvalidCredentials)
	_, err = f.c.Refresh(ctx, tr.AccessToken)
	require.ErrorIs(t, err, auth.ErrInvalidCredentials)

	assert.Equal(t, 2.0, f.attempts("success"))
	assert.Equal(t, 2.0, f.attempts("failure"))
	assert.Equal(t, int64(4), f.iss.TokenRequests())
	assert.Equal(t, "closed", f.c.BreakerState())
}

func TestLoginPassesTheResponseThrough(t *testing.T) {
	const body = `{"access_token":"a.b.c","expires_in":300,"token_type":"Bearer","x-custom":{"k":[1,2]}}` + "\n"
	var got url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		got = r.PostForm
		assert.Equal(t, "/realms/r/protocol/openid-connect/token", r.URL.Path)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(body))
	}))
	defer srv.Close()
	for _, secret := range []string{"", "s3cret"} {
		c, err := keycloak.NewClient(keycloak.ClientConfig{BaseURL: srv.URL, Realm: "r", ClientID: "app", ClientSecret: secret, Scope: "openid"})
		require.NoError(t, err)
		raw, err := c.Login(context.Background(), "ada", "pw")
		require.NoError(t, err)
		assert.Equal(t, body, string(raw))
		want := url.Values{"grant_type": {"password"}, "client_id": {"app"}, "username": {"ada"}, "password": {"pw"}, "scope": {"openid"}}
		if secret != "" {
			want.Set("client_secret", secret)
		}
		assert.Equal(t, want, got)
		require.NoError(t, c.Close())
	}
}

func TestConfidentialClientLogin(t *testing.T) {
	f := newClientFixture(t, authtest.Config{ClientSecret: "s3"}, keycloak.ClientConfig{ClientSecret: "s3"})
	_, err := f.c.Login(context.Background(), "ada", "lovelace")
	require.NoError(t, err)

	g := newClientFixture(t, authtest.Config{ClientSecret: "s3"}, keycloak.ClientConfig{ClientSecret: "wrong"})
	_, err = g.c.Login(context.Background(), "ada", "lovelace")
	require.ErrorIs(t, err, auth.ErrInvalidCredentials)
}

func TestWrongPasswordsNeverOpenTheBreaker(t *testing.T) {
	f := newClientFixture(t, authtest.Config{}, keycloak.ClientConfig{})
	ctx := context.Background()
	var wg sync.WaitGroup
	var wrong atomic.Int64
	for range 8 {
		wg.Go(func() {
			for range 125 {
				_, err := f.c.Login(ctx, "ada", "wrong")
				if errors.Is(err, auth.ErrInvalidCredentials) && errkind.Of(err) == errkind.Unauthenticated {
					wrong.Add(1)
				}
			}
		})
	}
	wg.Wait()
	assert.Equal(t, int64(1000), wrong.Load())
	assert.Equal(t, int64(1000), f.iss.TokenRequests(), "every attempt reached the provider")
	assert.Equal(t, "closed", f.c.BreakerState())
	assert.Equal(t, 1000.0, f.attempts("failure"))
	assert.Empty(t, f.transitions())

	_, err := f.c.Login(ctx, "", "x")
	require.ErrorIs(t, err, auth.ErrInvalidCredentials)
	assert.Equal(t, int64(1000), f.iss.TokenRequests(), "empty credentials are refused locally")
}

func TestBreakerFailingAndRecovering(t *testing.T) {
	// The open period must outlast the fast failures below, also on a busy machine.
	const open = time.Second
	f := newClientFixture(t, authtest.Config{}, keycloak.ClientConfig{OpenTimeout: open})
	ctx := context.Background()

	f.iss.Fail(http.StatusServiceUnavailable)
	for i := range 4 {
		_, err := f.c.Login(ctx, "ada", "lovelace")
		requireUnavailable(t, err)
		assert.Equal(t, "closed", f.c.BreakerState(), "after %d failures", i+1)
	}
	// A refused password in between proves the provider answers.
	f.iss.Fail(0)
	_, err := f.c.Login(ctx, "ada", "nope")
	require.ErrorIs(t, err, auth.ErrInvalidCredentials)
	f.iss.Fail(http.StatusInternalServerError)
	for range 5 {
		_, err := f.c.Login(ctx, "ada", "lovelace")
		requireUnavailable(t, err)
	}
	assert.Equal(t, "open", f.c.BreakerState())
	assert.Equal(t, 1.0, f.stateGauge())
	reached := f.iss.TokenRequests()
	assert.Equal(t, int64(10), reached)

	// While open, calls fail fast without reaching the provider.
	for range 20 {
		_, err := f.c.Login(ctx, "ada", "lovelace")
		d := requireUnavailable(t, err)
		assert.LessOrEqual(t, d, time.Second)
	}
	assert.Equal(t, reached, f.iss.TokenRequests())

	// Half-open: one probe; a failing probe reopens.
	time.Sleep(open + 50*time.Millisecond)
	_, err = f.c.Login(ctx, "ada", "lovelace")
	requireUnavailable(t, err)
	assert.Equal(t, "open", f.c.BreakerState())
	assert.Equal(t, reached+1, f.iss.TokenRequests())

	// The provider recovers: the next probe closes the breaker.
	f.iss.Fail(0)
	time.Sleep(open + 50*time.Millisecond)
	_, err = f.c.Login(ctx, "ada", "lovelace")
	require.NoError(t, err)
	assert.Equal(t, "closed", f.c.BreakerState())
	assert.Equal(t, 0.0, f.stateGauge())
	assert.Equal(t, map[string]float64{
		"closed->open": 1, "open->half-open": 2, "half-open->open": 1, "half-open->closed": 1,
	}, f.transitions())
	assert.Equal(t, 1.0, f.attempts("success"))
	assert.Equal(t, 1.0, f.attempts("failure"))
	assert.Equal(t, 30.0, f.attempts("error"))
}

func TestBreakerHangingProvider(t *testing.T) {
	f := newClientFixture(t, authtest.Config{}, keycloak.ClientConfig{Timeout: 100 * time.Millisecond})
	ctx := context.Background()
	f.iss.Hang(true)
	for range 5 {
		start := time.Now()
		_, err := f.c.Login(ctx, "ada", "lovelace")
		requireUnavailable(t, err)
		assert.Less(t, time.Since(start), time.Second)
	}
	assert.Equal(t, "open", f.c.BreakerState())

	// Half-open admits a single probe; a concurrent call is refused.
	time.Sleep(350 * time.Millisecond)
	probe := make(chan error)
	go func() {
		_, err := f.c.Login(ctx, "ada", "lovelace")
		probe <- err
	}()
	require.Eventually(t, func() bool { return f.iss.TokenRequests() == 6 }, time.Second, time.Millisecond)
	_, err := f.c.Login(ctx, "ada", "lovelace")
	requireUnavailable(t, err)
	requireUnavailable(t, <-probe)
	assert.Equal(t, int64(6), f.iss.TokenRequests())
	assert.Equal(t, "open", f.c.BreakerState())
	f.iss.Hang(false)
}

func TestBreakerConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	base := srv.URL
	srv.Close()
	reg := prometheus.NewRegistry()
	c, err := keycloak.NewClient(keycloak.ClientConfig{BaseURL: base, Realm: "r", ClientID: "app", Registerer: reg})
	require.NoError(t, err)
	defer c.Close()
	for range 5 {
		_, err := c.Login(context.Background(), "ada", "pw")
		requireUnavailable(t, err)
	}
	assert.Equal(t, "open", c.BreakerState())
	_, err = c.Login(context.Background(), "ada", "pw")
	d := requireUnavailable(t, err)
	assert.InDelta(t, 60, d.Seconds(), 1, "retry after the rest of the 60 s open period")
}

func TestCallerCancellationDoesNotCount(t *testing.T) {
	f := newClientFixture(t, authtest.Config{}, keycloak.ClientConfig{})
	f.iss.Hang(true)
	for range 8 {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		_, err := f.c.Login(ctx, "ada", "lovelace")
		cancel()
		require.ErrorIs(t, err, context.DeadlineExceeded)
	}
	assert.Equal(t, "closed", f.c.BreakerState())
	f.iss.Hang(false)
}

func TestClientConfigValidation(t *testing.T) {
	for _, cfg := range []keycloak.ClientConfig{
		{Realm: "r", ClientID: "c"},
		{BaseURL: "http://x", ClientID: "c"},
		{BaseURL: "http://x", Realm: "r"},
		{BaseURL: "http://x", Realm: "r/../x", ClientID: "c"},
	} {
		_, err := keycloak.NewClient(cfg)
		assert.Error(t, err)
	}
}

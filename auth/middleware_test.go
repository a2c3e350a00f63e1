package auth_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/internal/errkind"
	"github.com/pkgroute/pkgroute/internal/testenv"
)

func TestParseBearer(t *testing.T) {
	jwt := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"
	cases := []struct {
		in   string
		want string
		err  error
	}{
		{"Bearer " + jwt, jwt, nil},
		{"bearer " + jwt, jwt, nil},
		{"BEARER " + jwt, jwt, nil},
		{"Bearer abc==", "abc==", nil},
		{"Bearer a-._~+/9", "a-._~+/9", nil},
		{"", "", auth.ErrNoToken},
		{jwt, "", auth.ErrTokenDecode},
		{"Bearer", "", auth.ErrNoToken},
		{"bearer", "", auth.ErrNoToken},
		{"Bearer ", "", auth.ErrNoToken},
		{"Bearer \t ", "", auth.ErrNoToken},
		{"Bearer  " + jwt, "", auth.ErrTokenDecode},
		{"Bearer " + jwt + " ", "", auth.ErrTokenDecode},
		{"Bearer\t" + jwt, "", auth.ErrTokenDecode},
		{"Basic dXNlcjpwYXNz", "", auth.ErrOtherScheme},
		{"Basic dXNlcjpwYXNz", "", auth.ErrTokenDecode},
		{"Bearer a=b", "", auth.ErrTokenDecode},
		{"Bearer =", "", auth.ErrTokenDecode},
		{"Bearer a,b", "", auth.ErrTokenDecode},
		{"Bearer a\x00b", "", auth.ErrTokenDecode},
		{"Bearer é", "", auth.ErrTokenDecode},
		{"Bearer " + strings.Repeat("a", auth.MaxTokenBytes), strings.Repeat("a", auth.MaxTokenBytes), nil},
		{"Bearer " + strings.Repeat("a", auth.MaxTokenBytes+1), "", auth.ErrTokenDecode},
		{"Bearer " + strings.Repeat(".", 100000), "", auth.ErrTokenDecode},
	}
	for _, tc := range cases {
		name := tc.in
		if len(name) > 40 {
			name = name[:40]
		}
		t.Run(name, func(t *testing.T) {
			got, err := auth.ParseBearer(tc.in)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				assert.Empty(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestBearerTokenHeaders(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	_, err := auth.BearerToken(r)
	require.ErrorIs(t, err, auth.ErrNoToken)
	r.Header.Add("Authorization", "Bearer a")
	tok, err := auth.BearerToken(r)
	require.NoError(t, err)
	assert.Equal(t, "a", tok)
	r.Header.Add("Authorization", "Bearer b")
	_, err = auth.BearerToken(r)
	require.ErrorIs(t, err, auth.ErrTokenDecode)
}

// fakeAuth accepts "good" and maps other tokens to errors.
var fakeAuth = auth.AuthenticatorFunc(func(_ context.Context, token string) (*auth.Principal, error) {
	switch token {
	case "good":
		return &auth.Principal{ID: "u1", Username: "ada", Roles: []string{"r"}}, nil
	case "expired":
		return nil, fmt.Errorf("%w: exp passed", auth.ErrTokenExpired)
	case "garbled":
		return nil, fmt.Errorf("%w: bad json", auth.ErrTokenDecode)
	case "down":
		return nil, errkind.New(errkind.Unavailable, "key set unavailable")
	case "nil":
		return nil, nil
	default:
		return nil, fmt.Errorf("%w: signature", auth.ErrInvalidCredentials)
	}
})

func TestMiddleware(t *testing.T) {
	var seen *auth.Principal
	reached := 0
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached++
		seen = auth.FromContext(r.Context())
		w.WriteHeader(http.StatusNoContent)
	})
	strict := auth.Middleware(auth.Config{Authenticator: fakeAuth})(next)
	optional := auth.Middleware(auth.Config{Authenticator: fakeAuth, Optional: true})(next)
	custom := auth.Middleware(auth.Config{Authenticator: fakeAuth, Exclude: regexp.MustCompile(`^/public/`)})(next)

	const invalid = `Bearer error="invalid_token"`
	cases := []struct {
		name      string
		h         http.Handler
		path      string
		authz     string
		status    int
		challenge string
		msg       string
		user      string
	}{
		{"valid", strict, "/x", "Bearer good", 204, "", "", "ada"},
		{"scheme any case", strict, "/x", "bEaReR good", 204, "", "", "ada"},
		{"no token", strict, "/x", "", 401, "Bearer", "Authentication required", ""},
		{"bare token", strict, "/x", "good", 401, invalid, "Token could not be decoded", ""},
		{"basic", strict, "/x", "Basic Zm9vOmJhcg==", 401, "Bearer", "Authentication required", ""},
		{"other scheme", strict, "/x", "Token abc", 401, "Bearer", "Authentication required", ""},
		// The scheme alone sends no token: as without credentials.
		{"bearer without token", strict, "/x", "Bearer", 401, "Bearer", "Authentication required", ""},
		{"optional bearer without token is anonymous", optional, "/x", "Bearer", 204, "", "", ""},
		{"optional basic is anonymous", optional, "/x", "Basic Zm9vOmJhcg==", 204, "", "", ""},
		{"expired", strict, "/x", "Bearer expired", 401, invalid, "Token has expired", ""},
		{"garbled", strict, "/x", "Bearer garbled", 401, invalid, "Token could not be decoded", ""},
		{"invalid", strict, "/x", "Bearer forged", 401, invalid, "Invalid token", ""},
		{"nil principal", strict, "/x", "Bearer nil", 401, invalid, "Invalid token", ""},
		{"health excluded", strict, "/health", "", 204, "", "", ""},
		{"metrics excluded with bad token", strict, "/metrics", "Bearer forged", 204, "", "", ""},
		{"not excluded prefix", strict, "/healthz", "", 401, "Bearer", "Authentication required", ""},
		{"optional anonymous", optional, "/x", "", 204, "", "", ""},
		{"optional valid", optional, "/x", "Bearer good", 204, "", "", "ada"},
		{"optional bad token", optional, "/x", "Bearer forged", 401, invalid, "Invalid token", ""},
		{"optional expired", optional, "/x", "Bearer expired", 401, invalid, "Token has expired", ""},
		{"custom exclude", custom, "/public/a", "", 204, "", "", ""},
		{"custom exclude drops default", custom, "/health", "", 401, "Bearer", "Authentication required", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reached, seen = 0, nil
			r := httptest.NewRequest(http.MethodGet, tc.path, nil)
			if tc.authz != "" {
				r.Header.Set("Authorization", tc.authz)
			}
			w := httptest.NewRecorder()
			tc.h.ServeHTTP(w, r)
			require.Equal(t, tc.status, w.Code)
			if tc.status == 401 {
				assert.Zero(t, reached)
				assert.Equal(t, tc.challenge, w.Header().Get("WWW-Authenticate"))
				assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
				assert.JSONEq(t, fmt.Sprintf(`{"error":{"code":"authentication_failed","msg":%q,"details":null}}`, tc.msg), w.Body.String())
				return
			}
			assert.Equal(t, 1, reached)
			if tc.user == "" {
				assert.Nil(t, seen)
			} else {
				require.NotNil(t, seen)
				assert.Equal(t, tc.user, seen.Username)
			}
		})
	}
}

func TestMiddlewareInfrastructureError(t *testing.T) {
	h := auth.Middleware(auth.Config{Authenticator: fakeAuth})(http.NotFoundHandler())
	r := httptest.NewRequest(http.MethodGet, "/x", nil)
	r.Header.Set("Authorization", "Bearer down")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	assert.Equal(t, http.StatusServiceUnavailable, w.Code)
	assert.Equal(t, "1", w.Header().Get("Retry-After"))
	assert.JSONEq(t, `{"error":{"code":"service_unavailable","msg":"Authentication unavailable","details":null}}`, w.Body.String())
	assert.NotContains(t, w.Body.String(), "key set")
}

func TestMiddlewarePanicsWithoutAuthenticator(t *testing.T) {
	assert.Panics(t, func() { auth.Middleware(auth.Config{}) })
}

func TestReason(t *testing.T) {
	assert.Equal(t, "token_expired", auth.Reason(fmt.Errorf("x: %w", auth.ErrTokenExpired)))
	assert.Equal(t, "invalid_credentials", auth.Reason(auth.ErrInvalidCredentials))
	assert.Equal(t, "token_decode_error", auth.Reason(auth.ErrTokenDecode))
	assert.Equal(t, "no_token", auth.Reason(auth.ErrNoToken))
	assert.Equal(t, "error", auth.Reason(errors.New("boom")))
	for _, err := range []error{auth.ErrNoToken, auth.ErrTokenExpired, auth.ErrInvalidCredentials, auth.ErrTokenDecode} {
		assert.Equal(t, "authentication_failed", errkind.Of(err).Code())
	}
}

func TestContext(t *testing.T) {
	assert.Nil(t, auth.FromContext(context.Background()))
	p := &auth.Principal{ID: "x", Roles: []string{"a"}}
	got := auth.FromContext(auth.NewContext(context.Background(), p))
	assert.Same(t, p, got)
	assert.True(t, got.HasRole("a"))
	assert.False(t, got.HasRole("b"))
	assert.Nil(t, got.Claims())
}

// TestMiddlewareDefer: with Defer every refusal passes through the layers
// in between without a principal and is answered by Refuse exactly as the
// answering middleware answers it.
func TestMiddlewareDefer(t *testing.T) {
	final := 0
	var between []string
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		final++
		w.WriteHeader(http.StatusNoContent)
	})
	layer := func(h http.Handler) http.Handler { // what a rate limiter sees
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			user := "anonymous"
			if p := auth.FromContext(r.Context()); p != nil {
				user = p.Username
			}
			between = append(between, user)
			w.Header().Set("X-Between", "1")
			h.ServeHTTP(w, r)
		})
	}
	for _, optional := range []bool{false, true} {
		answering := auth.Middleware(auth.Config{Authenticator: fakeAuth, Optional: optional})(next)
		deferring := auth.Middleware(auth.Config{Authenticator: fakeAuth, Optional: optional, Defer: true})(layer(auth.Refuse(next)))
		for _, authz := range []string{"", "Bearer good", "good", "Bearer expired", "Bearer forged", "Bearer nil", "Bearer down"} {
			t.Run(fmt.Sprintf("optional=%v/%q", optional, authz), func(t *testing.T) {
				final, between = 0, nil
				do := func(h http.Handler) *httptest.ResponseRecorder {
					r := httptest.NewRequest(http.MethodGet, "/x", nil)
					if authz != "" {
						r.Header.Set("Authorization", authz)
					}
					w := httptest.NewRecorder()
					h.ServeHTTP(w, r)
					return w
				}
				want := do(answering)
				wantFinal := final
				final = 0
				got := do(deferring)
				assert.Equal(t, want.Code, got.Code)
				assert.Equal(t, want.Body.String(), got.Body.String())
				assert.Equal(t, want.Header().Get("WWW-Authenticate"), got.Header().Get("WWW-Authenticate"))
				assert.Equal(t, wantFinal, final, "the same requests reach the handler")
				require.Len(t, between, 1, "every request passes the layer in between")
				assert.Equal(t, "1", got.Header().Get("X-Between"))
				if authz == "Bearer good" {
					assert.Equal(t, "ada", between[0])
				} else {
					assert.Equal(t, "anonymous", between[0])
				}
			})
		}
	}
}

// TestUnavailableAuthenticatorLogsOncePerInterval checks that a failing
// authenticator, hit by every request, is logged once, not per request.
func TestUnavailableAuthenticatorLogsOncePerInterval(t *testing.T) {
	var logs testenv.Buffer
	h := auth.Middleware(auth.Config{
		Authenticator: auth.AuthenticatorFunc(func(context.Context, string) (*auth.Principal, error) {
			return nil, errkind.New(errkind.Unavailable, "key set unavailable")
		}),
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
	})(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for range 100 {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/x", nil)
		req.Header.Set("Authorization", "Bearer t")
		h.ServeHTTP(rec, req)
		require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	}
	assert.Equal(t, 1, strings.Count(logs.String(), "auth: token verification failed"), logs.String())
}

package authtest

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
)

// NewServer starts the issuer's Handler on a loopback httptest server, sets
// the issuer's BaseURL to it, and stops it when the test ends (releasing
// hung requests first). It fails the test if the issuer cannot be built.
func NewServer(tb testing.TB, cfg Config) *Issuer {
	tb.Helper()
	i, err := New(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	srv := httptest.NewServer(i.Handler())
	i.SetBaseURL(srv.URL)
	tb.Cleanup(func() {
		i.Hang(false)
		srv.Close()
	})
	return i
}

// Fail makes every endpoint answer status (with an OAuth2 error body) until
// Fail(0).
func (i *Issuer) Fail(status int) {
	i.mu.Lock()
	i.fail = status
	i.mu.Unlock()
}

// Hang makes every request wait, without answering, until Hang(false) or
// until the client gives up.
func (i *Issuer) Hang(on bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	switch {
	case on && i.hang == nil:
		i.hang = make(chan struct{})
	case !on && i.hang != nil:
		close(i.hang)
		i.hang = nil
	}
}

// JWKSRequests returns how many requests reached the JWKS endpoint.
func (i *Issuer) JWKSRequests() int64 { return i.jwksRequests.Load() }

// TokenRequests returns how many requests reached the token endpoint.
func (i *Issuer) TokenRequests() int64 { return i.tokenRequests.Load() }

// Handler serves the realm under /realms/{realm}/: the JWKS at
// protocol/openid-connect/certs, discovery at
// .well-known/openid-configuration and the token endpoint at
// protocol/openid-connect/token (grant types password and refresh_token).
func (i *Issuer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /realms/{realm}/protocol/openid-connect/certs", i.endpoint(&i.jwksRequests, i.serveJWKS))
	mux.HandleFunc("GET /realms/{realm}/.well-known/openid-configuration", i.endpoint(&i.discRequests, i.serveDiscovery))
	mux.HandleFunc("POST /realms/{realm}/protocol/openid-connect/token", i.endpoint(&i.tokenRequests, i.serveToken))
	return mux
}

// endpoint counts the request, applies the Fail and Hang knobs, checks the
// realm, then runs h.
func (i *Issuer) endpoint(n *atomic.Int64, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		i.mu.RLock()
		fail, hang := i.fail, i.hang
		i.mu.RUnlock()
		if hang != nil {
			select {
			case <-hang:
			case <-r.Context().Done():
				return
			}
		}
		if fail != 0 {
			oauthError(w, fail, "unknown_error", "injected failure")
			return
		}
		if r.PathValue("realm") != i.realm {
			writeJSON(w, http.StatusNotFound, map[string]any{"error": "Realm does not exist"})
			return
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func (i *Issuer) serveJWKS(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(i.JWKS())
}

func (i *Issuer) serveDiscovery(w http.ResponseWriter, _ *http.Request) {
	iss := i.IssuerURL()
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                iss,
		"authorization_endpoint":                iss + "/protocol/openid-connect/auth",
		"token_endpoint":                        iss + "/protocol/openid-connect/token",
		"jwks_uri":                              iss + "/protocol/openid-connect/certs",
		"grant_types_supported":                 []string{"password", "refresh_token"},
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{RS256, ES256},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
	})
}

func (i *Issuer) serveToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "Malformed form")
		return
	}
	clientID, secret, basic := r.BasicAuth()
	if !basic {
		clientID, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if clientID == "" {
		oauthError(w, http.StatusBadRequest, "invalid_request", "Missing parameter: client_id")
		return
	}
	if clientID != i.clientID {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "Invalid client or Invalid client credentials")
		return
	}
	if i.secret != "" && secret != i.secret {
		oauthError(w, http.StatusUnauthorized, "unauthorized_client", "Invalid client or Invalid client credentials")
		return
	}
	var u User
	switch r.PostForm.Get("grant_type") {
	case "password":
		i.mu.RLock()
		known, ok := i.users[r.PostForm.Get("username")]
		i.mu.RUnlock()
		if !ok || known.Password != r.PostForm.Get("password") || r.PostForm.Get("password") == "" {
			oauthError(w, http.StatusUnauthorized, "invalid_grant", "Invalid user credentials")
			return
		}
		u = known
	case "refresh_token":
		known, ok := i.refreshUser(r.PostForm.Get("refresh_token"))
		if !ok {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "Invalid refresh token")
			return
		}
		u = known
	case "":
		oauthError(w, http.StatusBadRequest, "invalid_request", "Missing form parameter: grant_type")
		return
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "Unsupported grant_type")
		return
	}
	resp, err := i.tokenResponse(u)
	if err != nil {
		oauthError(w, http.StatusInternalServerError, "unknown_error", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (i *Issuer) tokenResponse(u User) (map[string]any, error) {
	claims := i.userClaims(u)
	access, err := i.Sign(claims)
	if err != nil {
		return nil, err
	}
	now := i.now()
	refresh, err := i.Sign(jwt.MapClaims{
		"exp":           now.Add(i.refreshTTL).Unix(),
		"iat":           now.Unix(),
		"jti":           uuid.NewString(),
		"iss":           i.IssuerURL(),
		"aud":           i.IssuerURL(),
		"sub":           claims["sub"],
		"typ":           "Refresh",
		"azp":           i.clientID,
		"session_state": claims["session_state"],
		"scope":         claims["scope"],
		"username":      u.Username,
	})
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"access_token":       access,
		"expires_in":         int(i.tokenTTL.Seconds()),
		"refresh_expires_in": int(i.refreshTTL.Seconds()),
		"refresh_token":      refresh,
		"token_type":         "Bearer",
		"not-before-policy":  0,
		"session_state":      claims["session_state"],
		"scope":              claims["scope"],
	}, nil
}

// refreshUser verifies a refresh token minted by tokenResponse and returns
// the user it names.
func (i *Issuer) refreshUser(raw string) (User, bool) {
	var claims jwt.MapClaims
	_, err := jwt.ParseWithClaims(raw, &claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		k := i.key(kid)
		if k == nil || k.alg != t.Method.Alg() {
			return nil, jwt.ErrTokenUnverifiable
		}
		return k.priv.Public(), nil
	},
		jwt.WithValidMethods([]string{RS256, ES256}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(i.IssuerURL()),
		jwt.WithTimeFunc(i.now),
	)
	if err != nil || claims["typ"] != "Refresh" || claims["azp"] != i.clientID {
		return User{}, false
	}
	name, _ := claims["username"].(string)
	i.mu.RLock()
	u, ok := i.users[name]
	i.mu.RUnlock()
	if !ok || strings.TrimSpace(name) == "" {
		return User{}, false
	}
	return u, true
}

package authtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/internal/errkind"
	"github.com/pkgroute/pkgroute/internal/httperr"
)

// Leeway is the clock leeway Authenticate allows on exp, nbf and iat, as
// keycloak.Verifier's default.
const Leeway = 30 * time.Second

// maxLoginBody bounds the body of a login or refresh request.
const maxLoginBody = 64 << 10

var _ auth.Authenticator = (*Issuer)(nil)

// Authenticate verifies an access token that i signed, in process (no JWKS
// fetch): one of i's keys and algorithms, issuer i.IssuerURL(), typ
// "Bearer", azp i.ClientID(), and exp (required), nbf and iat within
// Leeway of i's clock. The principal is what keycloak.Verifier makes of the
// same token: ID from sub, Username from preferred_username, Roles the
// client roles (resource_access[client].roles), ExpiresAt from exp. Errors
// wrap auth.ErrTokenExpired, auth.ErrTokenDecode or
// auth.ErrInvalidCredentials.
//
// With it, an Issuer is an auth.Authenticator: a development or test
// server needs neither a JWKS endpoint nor an HTTP client.
func (i *Issuer) Authenticate(_ context.Context, token string) (*auth.Principal, error) {
	var claims jwt.MapClaims
	_, err := jwt.ParseWithClaims(token, &claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		k := i.key(kid)
		if k == nil || k.alg != t.Method.Alg() {
			return nil, jwt.ErrTokenUnverifiable
		}
		return k.priv.Public(), nil
	},
		jwt.WithValidMethods([]string{RS256, ES256}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(i.IssuerURL()),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(i.now),
	)
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return nil, fmt.Errorf("authtest: %w", auth.ErrTokenExpired)
	case errors.Is(err, jwt.ErrTokenMalformed):
		return nil, fmt.Errorf("authtest: %w", auth.ErrTokenDecode)
	case err != nil:
		return nil, fmt.Errorf("authtest: %v: %w", err, auth.ErrInvalidCredentials)
	}
	if claims["typ"] != "Bearer" || claims["azp"] != i.clientID {
		return nil, fmt.Errorf("authtest: not an access token of client %s: %w", i.clientID, auth.ErrInvalidCredentials)
	}
	sub, _ := claims["sub"].(string)
	if sub == "" {
		return nil, fmt.Errorf("authtest: token without sub: %w", auth.ErrInvalidCredentials)
	}
	p := &auth.Principal{ID: sub, Roles: []string{}}
	p.Username, _ = claims["preferred_username"].(string)
	if exp, err := claims.GetExpirationTime(); err == nil && exp != nil {
		p.ExpiresAt = exp.Time
	}
	if ra, ok := claims["resource_access"].(map[string]any); ok {
		if client, ok := ra[i.clientID].(map[string]any); ok {
			if roles, ok := client["roles"].([]any); ok {
				for _, r := range roles {
					if s, ok := r.(string); ok {
						p.Roles = append(p.Roles, s)
					}
				}
			}
		}
	}
	p.RawClaims = func() map[string]any { return cloneClaims(claims) }
	return p, nil
}

func cloneClaims(c jwt.MapClaims) map[string]any {
	b, _ := json.Marshal(c)
	var out map[string]any
	_ = json.Unmarshal(b, &out)
	return out
}

// LoginHandler serves an application's login routes in process, over i's
// user table:
//
//	POST /auth/login   {"username":"...","password":"..."}
//	POST /auth/refresh {"refresh_token":"..."}
//
// Both answer 200 with the token response of the realm's token endpoint
// (access_token, expires_in, refresh_token, refresh_expires_in,
// token_type); refused credentials are 401 authentication_failed with
// "WWW-Authenticate: Bearer", a body that is not such a JSON object 400
// invalid_data. Mount it on those paths (other paths answer 404), as
// server.Config.Login does.
func (i *Issuer) LoginHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /auth/login", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Username string `json:"username"`
			Password string `json:"password"`
		}
		if !decodeLogin(w, r, &in) {
			return
		}
		if in.Username == "" || in.Password == "" {
			invalid(w, "", "username and password are required")
			return
		}
		i.mu.RLock()
		u, ok := i.users[in.Username]
		i.mu.RUnlock()
		if !ok || u.Password != in.Password {
			refused(w, "Invalid username or password")
			return
		}
		i.writeTokens(w, u)
	})
	mux.HandleFunc("POST /auth/refresh", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			RefreshToken string `json:"refresh_token"`
		}
		if !decodeLogin(w, r, &in) {
			return
		}
		if in.RefreshToken == "" {
			invalid(w, "/refresh_token", "required property is missing")
			return
		}
		u, ok := i.refreshUser(in.RefreshToken)
		if !ok {
			refused(w, "Invalid refresh token")
			return
		}
		i.writeTokens(w, u)
	})
	return mux
}

func (i *Issuer) writeTokens(w http.ResponseWriter, u User) {
	resp, err := i.tokenResponse(u)
	if err != nil {
		httperr.Write(w, http.StatusInternalServerError, errkind.Internal.Code(), "Internal server error", nil, 0)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// decodeLogin decodes a JSON object body strictly into v, or answers 400.
func decodeLogin(w http.ResponseWriter, r *http.Request, v any) bool {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxLoginBody+1))
	if err != nil || len(b) > maxLoginBody {
		invalid(w, "", "the body could not be read")
		return false
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil || d.More() || !strings.HasPrefix(strings.TrimSpace(string(b)), "{") {
		invalid(w, "", "the body is not the expected JSON object")
		return false
	}
	return true
}

func invalid(w http.ResponseWriter, path, msg string) {
	httperr.Write(w, errkind.InvalidData.HTTPStatus(), errkind.InvalidData.Code(), "Invalid data",
		[]map[string]string{{"path": path, "msg": msg}}, 0)
}

func refused(w http.ResponseWriter, msg string) {
	w.Header().Set("WWW-Authenticate", "Bearer")
	auth.WriteError(w, http.StatusUnauthorized, errkind.Unauthenticated.Code(), msg)
}

package auth

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"regexp"

	"github.com/pkgroute/pkgroute/internal/errkind"
	"github.com/pkgroute/pkgroute/internal/httperr"
	"github.com/pkgroute/pkgroute/internal/lograte"
)

// DefaultExclude matches the paths the middleware lets through without a
// token by default.
const DefaultExclude = `^(/health|/metrics)$`

// Config configures Middleware. Authenticator is required.
type Config struct {
	// Authenticator verifies the bearer tokens.
	Authenticator Authenticator
	// Exclude matches request paths served without authentication; nil
	// means DefaultExclude.
	Exclude *regexp.Regexp
	// Optional lets requests without credentials through unauthenticated
	// (no principal in the context); a bad or expired token is still
	// refused. Handlers behind it decide what anonymous callers may do.
	Optional bool
	// Logger receives verification errors that are not authentication
	// failures (the authenticator's dependency down), at most one record
	// per kind per 10 s, the next one counting those left out
	// ("suppressed"); nil discards.
	Logger *slog.Logger
	// Defer passes the requests it would refuse on without a principal,
	// with the refusal in their context, instead of answering them; [Refuse]
	// placed further in answers them. Layers in between, a rate limiter keyed
	// by client address for instance, then see those requests too, so that
	// guessing tokens is limited like any other request.
	Defer bool
}

type refusalKey struct{}

// Refuse answers the requests whose refusal a Middleware with Defer left in
// their context, exactly as that Middleware would have, and passes the
// others to next.
func Refuse(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if answer, ok := r.Context().Value(refusalKey{}).(func(http.ResponseWriter)); ok {
			answer(w)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Middleware authenticates requests by their "Authorization: Bearer" header
// and puts the principal in the request context. A request without a token,
// or with credentials of another scheme (Basic, say), gets 401 with
// "WWW-Authenticate: Bearer" (unless Optional, which lets it through as
// anonymous); a malformed,
// invalid or expired token gets 401 with
// `WWW-Authenticate: Bearer error="invalid_token"`. Both carry the error
// body {"error":{"code":"authentication_failed","msg":...,"details":null}}.
// With cfg.Defer these answers are left to [Refuse]. It panics if cfg has no
// Authenticator.
func Middleware(cfg Config) func(http.Handler) http.Handler {
	if cfg.Authenticator == nil {
		panic("auth: Middleware needs an Authenticator")
	}
	exclude := cfg.Exclude
	if exclude == nil {
		exclude = regexp.MustCompile(DefaultExclude)
	}
	flog := lograte.New(cfg.Logger, 0, nil)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if exclude.MatchString(r.URL.Path) {
				next.ServeHTTP(w, r)
				return
			}
			refuse := func(answer func(http.ResponseWriter)) {
				if cfg.Defer {
					next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), refusalKey{}, answer)))
					return
				}
				answer(w)
			}
			token, err := BearerToken(r)
			if errors.Is(err, ErrNoToken) || errors.Is(err, ErrOtherScheme) {
				if cfg.Optional {
					next.ServeHTTP(w, r)
					return
				}
				refuse(unauthorized(`Bearer`, "Authentication required"))
				return
			}
			if err != nil {
				refuse(unauthorized(`Bearer error="invalid_token"`, Message(err)))
				return
			}
			p, err := cfg.Authenticator.Authenticate(r.Context(), token)
			if err != nil {
				if k := errkind.Of(err); k != errkind.Unauthenticated {
					flog.Log(r.Context(), slog.LevelError, "auth: token verification failed", "error", err)
					retry := errkind.RetryAfterOf(err)
					refuse(func(w http.ResponseWriter) {
						httperr.Write(w, k.HTTPStatus(), k.Code(), "Authentication unavailable", nil, retry)
					})
					return
				}
				refuse(unauthorized(`Bearer error="invalid_token"`, Message(err)))
				return
			}
			if p == nil {
				flog.Log(r.Context(), slog.LevelError, "auth: authenticator returned no principal and no error")
				refuse(unauthorized(`Bearer error="invalid_token"`, Message(ErrInvalidCredentials)))
				return
			}
			next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), p)))
		})
	}
}

// Reason returns the failure reason of an authentication error for logs
// and metrics: "token_expired", "invalid_credentials", "token_decode_error",
// "no_token", or "error" for anything else.
func Reason(err error) string {
	switch {
	case errors.Is(err, ErrTokenExpired):
		return "token_expired"
	case errors.Is(err, ErrTokenDecode):
		return "token_decode_error"
	case errors.Is(err, ErrInvalidCredentials):
		return "invalid_credentials"
	case errors.Is(err, ErrNoToken):
		return "no_token"
	default:
		return "error"
	}
}

// Message returns the client-facing message for an authentication error.
// It names the reason and never includes verifier internals.
func Message(err error) string {
	switch Reason(err) {
	case "token_expired":
		return "Token has expired"
	case "token_decode_error":
		return "Token could not be decoded"
	case "no_token":
		return "Authentication required"
	default:
		return "Invalid token"
	}
}

// unauthorized returns the 401 answer with challenge and msg.
func unauthorized(challenge, msg string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("WWW-Authenticate", challenge)
		WriteError(w, http.StatusUnauthorized, errkind.Unauthenticated.Code(), msg)
	}
}

// WriteError writes the HTTP error body of the wire contract:
// {"error":{"code":code,"msg":msg,"details":null}} with status and
// Content-Type application/json; 429 and 503 answers get "Retry-After: 1"
// unless one is set. It is what leaves without an error value to answer
// (rbac, the package bridge) share with middleware.WriteError.
func WriteError(w http.ResponseWriter, status int, code, msg string) {
	httperr.Write(w, status, code, msg, nil, 0)
}

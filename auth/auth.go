package auth

import (
	"context"
	"slices"
	"time"
)

// Principal is an authenticated caller.
type Principal struct {
	// ID is the stable subject identifier (the token's sub).
	ID string
	// Username is the human-readable name (preferred_username).
	Username string
	// Roles are the roles granted to the caller.
	Roles []string
	// ExpiresAt is when the credential that produced the principal expires;
	// zero means it does not expire.
	ExpiresAt time.Time
	// RawClaims returns the verified token's claims on demand; nil when the
	// principal did not come from a token.
	RawClaims func() map[string]any
}

// HasRole reports whether p holds role.
func (p *Principal) HasRole(role string) bool {
	return p != nil && slices.Contains(p.Roles, role)
}

// Claims returns the raw claims of the token behind p, or nil.
func (p *Principal) Claims() map[string]any {
	if p == nil || p.RawClaims == nil {
		return nil
	}
	return p.RawClaims()
}

type ctxKey struct{}

// NewContext returns a copy of ctx that carries p.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the principal carried by ctx, or nil.
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(ctxKey{}).(*Principal)
	return p
}

// Authenticator verifies a bearer token (without the "Bearer " scheme) and
// returns the principal it names. Errors wrap one of the package sentinels.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (*Principal, error)
}

// AuthenticatorFunc adapts a function to Authenticator.
type AuthenticatorFunc func(ctx context.Context, token string) (*Principal, error)

// Authenticate calls f.
func (f AuthenticatorFunc) Authenticate(ctx context.Context, token string) (*Principal, error) {
	return f(ctx, token)
}

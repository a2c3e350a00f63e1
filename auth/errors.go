package auth

import "github.com/pkgroute/pkgroute/internal/errkind"

// Sentinel errors. Each maps to the wire code authentication_failed; the
// sentinel names the reason for logs and metrics.
var (
	// ErrNoToken means the request carried no credentials.
	ErrNoToken = errkind.New(errkind.Unauthenticated, "no token")
	// ErrTokenExpired means the token's exp has passed.
	ErrTokenExpired = errkind.New(errkind.Unauthenticated, "token_expired")
	// ErrInvalidCredentials means the token (or password) was refused.
	ErrInvalidCredentials = errkind.New(errkind.Unauthenticated, "invalid_credentials")
	// ErrTokenDecode means the token could not be parsed.
	ErrTokenDecode = errkind.New(errkind.Unauthenticated, "token_decode_error")
)

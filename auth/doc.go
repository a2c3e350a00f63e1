// Package auth defines who the caller is: the Principal, how it travels in a
// context, the Authenticator interface that verifies bearer tokens, the
// sentinel errors for authentication failures, and HTTP middleware.
package auth

// Package keycloak verifies Keycloak access tokens and logs users in against
// a Keycloak realm.
//
// Verifier implements auth.Authenticator: it checks RS256/ES256 signatures
// against the realm's JWKS (cached, refreshed in the background and on an
// unknown kid at most once per cooldown, with concurrent misses coalesced),
// the registered claims with a leeway, the issuer, and that the token was
// minted for the configured client (azp, or aud containing the client id).
// Roles come from resource_access[client].roles, plus realm_access.roles
// when enabled. Tokens longer than auth.MaxTokenBytes (8 KiB) are refused
// before parsing. Verified tokens are cached by hash until they expire.
//
// Client performs the OAuth2 password and refresh grants at the realm's
// token endpoint behind a circuit breaker, and passes the token response
// through unchanged.
package keycloak

// Package authtest is an OpenID Connect issuer for tests and development,
// shaped like a Keycloak realm.
//
// An Issuer holds RSA and EC signing keys and mints access tokens with any
// claims, clock, key id or algorithm. Its Handler serves the realm's JWKS,
// the OIDC discovery document and a token endpoint (password and refresh
// grants over a user table) under /realms/{realm}/..., the paths Keycloak
// uses, so that verifiers and login clients can be tested with real HTTP.
// Knobs make the server fail with a status, hang, or rotate its keys.
//
// An Issuer is also an auth.Authenticator (Authenticate verifies its own
// tokens in process, as keycloak.Verifier would) and LoginHandler serves an
// application's POST /auth/login and /auth/refresh over its user table:
// development auth in one value, with no JWKS fetch and no HTTP client.
//
// NewServer starts the handler on a loopback httptest server for a test;
// the handler can also be mounted on any mux (a development issuer).
//
// The keys are generated in memory for each Issuer; nothing here is meant
// to protect production traffic.
package authtest

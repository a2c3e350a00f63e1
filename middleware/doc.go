// Package middleware holds the HTTP layers that surround a pkgroute
// application: security headers, trusted hosts, correlation ids, panic
// recovery, access logging, Prometheus metrics, body limits, client IP
// resolution and CORS, plus the single place where errors become the wire
// error body ([WriteError]) and a server constructor with safe timeouts
// ([NewServer], [Shutdown]).
//
// Every middleware is a func(http.Handler) http.Handler built from a Config
// whose zero value means the documented defaults. [Chain] composes them, the
// first argument being the outermost layer.
//
// # Standard order
//
// The recommended stack, outermost first:
//
//	SecurityHeaders   every response, errors and panics included, carries the headers
//	CorrelationID     every response echoes X-Correlation-ID; the request logger carries it
//	Recover           a panic below becomes 500 internal_error
//	ClientIP          the client address for logs and rate limiting
//	AccessLog         one log line per request
//	Metrics           http_requests_total and friends
//	Match(mux)        names the route early, for the answers of the layers below
//	auth (deferring)  the principal, or the refusal of a bad token left for later
//	audit, rate limit the application's layers: every request below is counted
//	TrustedHosts      400 invalid_host
//	CORS              preflights answered before authentication
//	BodyLimit         413 request_too_large
//	auth.Refuse       401 for the refused tokens
//	Routes(mux)       the application's ServeMux
//
// [Listener] wraps the server's listener so that the answers net/http gives
// before any handler runs follow the contract too.
//
// This is the request flow of the design (security headers, trusted host,
// correlation id, recover, access log and metrics, body limit, auth, rate
// limit, audit) with two moves. Trusted hosts sits below the observers, so
// that a request refused for its Host header still gets a correlation id, a
// log line and a count, as every other refusal does. Trusted hosts, the body
// limit and the answer to a refused token sit below the rate limit (auth
// only identifies the caller above it, see auth.Config.Defer), so that every
// refusal carries the rate limit headers and is counted against its client:
// guessing tokens or sending oversized bodies is limited like any other
// request.
//
// # Route patterns
//
// The route pattern that labels metrics and log lines is only known once the
// ServeMux has matched the request, deep inside the stack, and the layers in
// between pass copies of the request. [AccessLog] and [Metrics] therefore put
// a small holder in the request context, and [Routes], wrapped directly
// around the application's ServeMux, fills it with the matched pattern and
// the authenticated principal before the route handler runs. [Match], right
// below the observers, fills in the pattern earlier, so that requests refused
// before they reach [Routes] (a bad token, an oversized body, the rate limit)
// are labelled with their route too. Without them the observers fall back to
// the request they see themselves, which usually knows neither. Requests
// that match no pattern are labelled "unmatched", never with their raw path.
package middleware

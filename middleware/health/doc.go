// Package health answers the health endpoints of a pkgroute service: a
// readiness handler that runs named dependency checks concurrently under a
// timeout and answers the wire contract's body,
//
//	{"status":"healthy","database":"healthy","redis":"disabled","websocket":{"status":"healthy","active_connections":3}}
//
// with 200 when the overall status is healthy and 503 otherwise, and a
// liveness handler that touches nothing.
package health

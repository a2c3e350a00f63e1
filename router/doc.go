// Package router is the transport-independent core of pkgroute: a
// PackageRouter maps integer package ids (pkg_id) to handlers, and Dispatch
// turns a raw request envelope into a response envelope (docs/protocol.md
// sections 1.2-1.4).
//
// The pipeline of one request: strict envelope parse (unknown fields,
// duplicate keys, trailing data, absurd numbers and a req_id that is not a
// UUID are invalid_request) -> a handler exists (unknown_package) ->
// middleware (first added = outermost) -> roles (permission_denied, checked
// before the schema) -> JSON Schema (invalid_data with JSON-pointer details)
// -> the handler, under its deadline (a handler that returns after it
// answers timeout, whatever it returned), with panics recovered
// (internal_error) -> the encoding of the reply (a value that cannot be
// encoded, or panics while encoding, answers internal_error).
//
// Every registration declares who may call it with exactly one of Roles
// (all of them must be held), Authenticated or Public. Handle registers typed handlers of the
// shape func(ctx, I) (O, error), the shape of command.Command.Execute, so
// one piece of business logic serves every transport.
//
// Errors become wire codes in exactly one place, ToError: *Error is sent as
// is, the sentinels (ErrNotFound, ErrConflict, ErrForbidden, ErrInvalidData)
// and the matching errors of the leaf packages map by kind, and every other
// error is internal_error, logged and never leaked.
package router

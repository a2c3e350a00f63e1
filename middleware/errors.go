package middleware

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/pkgroute/pkgroute/internal/errkind"
	"github.com/pkgroute/pkgroute/internal/httperr"
)

// Sentinel errors answered by the layers of this package.
var (
	// ErrRequestTooLarge is returned by a limited request body read past its
	// limit; it answers 413 request_too_large.
	ErrRequestTooLarge = errkind.New(errkind.TooLarge, "request body too large")
	// ErrInvalidHost answers 400 invalid_host for a Host that is not allowed.
	ErrInvalidHost = errkind.New(errkind.InvalidHost, "host not allowed")
	// ErrNotFound answers 404 not_found, for unknown routes too.
	ErrNotFound = errkind.New(errkind.NotFound, "not found")
)

const (
	internalMsg      = "internal server error"
	contentTypeJSON  = "application/json"
	methodNotAllowed = "method_not_allowed"
)

// WriteError answers err with the wire error body
// {"error":{"code","msg","details"}} and Content-Type application/json.
//
// The status and code come from errkind.Of(err). The message is the text of
// the first classified error in err's chain (the sentinel or typed error),
// so wrapping context added on the way up, which may name internals, never
// reaches the client. Details come from errkind.DetailsOf (null when nil).
// 429 and 503 answers carry Retry-After in whole seconds, at least 1, from
// errkind.RetryAfterOf. Errors of no known kind answer 500 internal_error
// with a generic message and are logged once, with the request logger
// ([LoggerFrom]).
//
// WriteError must be called before anything else is written to w.
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	if err == nil {
		err = errors.New("middleware: WriteError called with a nil error")
	}
	kind := errkind.Of(err)
	if kind == errkind.Internal {
		LoggerFrom(r.Context()).LogAttrs(r.Context(), slog.LevelError, "internal error",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Any("error", err))
		httperr.Write(w, http.StatusInternalServerError, kind.Code(), internalMsg, nil, 0)
		return
	}
	var c errkind.Classified
	errors.As(err, &c) // kind != Internal, so there is one
	httperr.Write(w, kind.HTTPStatus(), kind.Code(), c.Error(), errkind.DetailsOf(err), errkind.RetryAfterOf(err))
}

// WriteJSON answers v encoded as JSON with the given status and
// Content-Type application/json (no body for 204 and 304). When v cannot be
// encoded it answers 500 internal_error instead and returns the encoding
// error for the caller to log.
func WriteJSON(w http.ResponseWriter, status int, v any) error {
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(v); err != nil {
		httperr.Write(w, http.StatusInternalServerError, errkind.Internal.Code(), internalMsg, nil, 0)
		return err
	}
	httperr.WriteJSON(w, status, buf.Bytes())
	return nil
}

// NotFound answers 404 not_found with the wire error body. Use it as
// http.HandlerFunc(middleware.NotFound); [Routes] already answers unknown
// routes this way.
func NotFound(w http.ResponseWriter, r *http.Request) {
	WriteError(w, r, ErrNotFound)
}

// writeMethodNotAllowed answers 405 with the wire error body; the Allow
// header set by the ServeMux is kept.
func writeMethodNotAllowed(w http.ResponseWriter) {
	httperr.Write(w, http.StatusMethodNotAllowed, methodNotAllowed, "method not allowed", nil, 0)
}

package router

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pkgroute/pkgroute/internal/errkind"
)

// Wire codes of the error object (data.code).
const (
	CodeInvalidRequest     = "invalid_request"
	CodeUnknownPackage     = "unknown_package"
	CodePermissionDenied   = "permission_denied"
	CodeInvalidData        = "invalid_data"
	CodeConflict           = "conflict"
	CodeNotFound           = "not_found"
	CodeDuplicateRequest   = "duplicate_request"
	CodeTimeout            = "timeout"
	CodeServiceUnavailable = "service_unavailable"
	CodeInternalError      = "internal_error"
	CodeRateLimitExceeded  = "rate_limit_exceeded"
)

// Sentinel errors that handlers return (possibly wrapped) to produce the
// matching wire error. Errors of the leaf packages (repository.ErrNotFound,
// ...) map the same way.
var (
	ErrNotFound    = errkind.New(errkind.NotFound, "not found")
	ErrConflict    = errkind.New(errkind.Conflict, "conflict")
	ErrForbidden   = errkind.New(errkind.Forbidden, "permission denied")
	ErrInvalidData = errkind.New(errkind.InvalidData, "invalid data")
)

// Error is an error with its wire representation: a status code, a code,
// a message and optional details.
type Error struct {
	Status  StatusCode
	Code    string
	Msg     string
	Details any
	// Retry tells rate-limited or unavailable callers when to retry.
	Retry time.Duration
	// Err is the underlying cause, if any; it is never sent.
	Err error
}

// Error returns the message.
func (e *Error) Error() string { return e.Msg }

// ErrorKind classifies the error for other transports (the HTTP error body).
func (e *Error) ErrorKind() errkind.Kind {
	switch e.Code {
	case CodeNotFound, CodeUnknownPackage:
		return errkind.NotFound
	case CodeConflict:
		return errkind.Conflict
	case CodeInvalidData:
		return errkind.InvalidData
	case CodeInvalidRequest:
		return errkind.InvalidRequest
	case CodePermissionDenied:
		return errkind.Forbidden
	case CodeRateLimitExceeded:
		return errkind.RateLimited
	case CodeServiceUnavailable:
		return errkind.Unavailable
	case CodeTimeout:
		return errkind.Timeout
	}
	switch e.Status {
	case StatusInvalidData:
		return errkind.InvalidData
	case StatusPermissionDenied:
		return errkind.Forbidden
	case StatusRateLimited:
		return errkind.RateLimited
	}
	return errkind.Internal
}

// ErrorDetails returns the details.
func (e *Error) ErrorDetails() any { return e.Details }

// RetryAfter returns the retry hint.
func (e *Error) RetryAfter() time.Duration { return e.Retry }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Body returns the wire error object.
func (e *Error) Body() *ErrorBody {
	b := &ErrorBody{Code: e.Code, Msg: e.Msg, Details: e.Details}
	if e.Retry > 0 || e.Code == CodeRateLimitExceeded || e.Code == CodeServiceUnavailable {
		ms := e.Retry.Milliseconds()
		if ms <= 0 && e.Retry > 0 {
			ms = 1
		}
		b.RetryAfterMS = &ms
	}
	return b
}

// NewError returns an *Error.
func NewError(status StatusCode, code, msg string) *Error {
	return &Error{Status: status, Code: code, Msg: msg}
}

// InvalidData returns an invalid_data error with details.
func InvalidData(msg string, details ...Detail) *Error {
	e := &Error{Status: StatusInvalidData, Code: CodeInvalidData, Msg: msg}
	if len(details) > 0 {
		e.Details = details
	}
	return e
}

// internalMsg is the message of every internal_error: no internals leak.
const internalMsg = "Internal server error"

// ToError maps any error to its wire form. It is the one place where errors
// become wire codes: *Error is kept, errors of a known kind map by kind,
// context deadlines become timeout, and everything else is internal_error
// (with the cause kept in Err for logging, never sent).
func ToError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &Error{Status: StatusError, Code: CodeTimeout, Msg: "the request exceeded its deadline", Err: err}
	}
	k := errkind.Of(err)
	out := &Error{Err: err, Msg: err.Error(), Details: errkind.DetailsOf(err), Retry: errkind.RetryAfterOf(err)}
	switch k {
	case errkind.NotFound:
		out.Status, out.Code = StatusError, CodeNotFound
	case errkind.Conflict:
		out.Status, out.Code = StatusInvalidData, CodeConflict
	case errkind.Forbidden:
		out.Status, out.Code = StatusPermissionDenied, CodePermissionDenied
	case errkind.InvalidData, errkind.TooLarge:
		out.Status, out.Code = StatusInvalidData, CodeInvalidData
	case errkind.InvalidRequest:
		out.Status, out.Code = StatusInvalidData, CodeInvalidRequest
	case errkind.RateLimited:
		out.Status, out.Code = StatusRateLimited, CodeRateLimitExceeded
	case errkind.Unavailable:
		out.Status, out.Code = StatusError, CodeServiceUnavailable
	case errkind.Timeout:
		out.Status, out.Code = StatusError, CodeTimeout
	case errkind.Unauthenticated:
		out.Status, out.Code = StatusPermissionDenied, CodePermissionDenied
	default:
		out.Status, out.Code, out.Msg, out.Details, out.Retry = StatusError, CodeInternalError, internalMsg, nil, 0
	}
	return out
}

// Fail returns the response that reports err.
func Fail(err error) Response {
	e := ToError(err)
	return Response{Status: e.Status, Data: e.Body(), Err: err}
}

func failf(status StatusCode, code, format string, args ...any) Response {
	e := &Error{Status: status, Code: code, Msg: fmt.Sprintf(format, args...)}
	return Response{Status: status, Data: e.Body(), Err: e}
}

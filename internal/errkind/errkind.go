// Package errkind classifies errors into the kinds that the wire contract
// distinguishes, so that leaf packages can declare sentinels that every
// transport maps the same way without importing each other.
package errkind

import (
	"errors"
	"net/http"
	"time"
)

// Kind is the class of an error as the wire contract sees it.
type Kind uint8

// The kinds. Internal is the zero value: an error of no known kind.
const (
	Internal Kind = iota
	InvalidRequest
	InvalidData
	NotFound
	Conflict
	Forbidden
	Unauthenticated
	RateLimited
	Unavailable
	Timeout
	TooLarge
	InvalidHost
)

var codes = [...]string{
	Internal:        "internal_error",
	InvalidRequest:  "invalid_request",
	InvalidData:     "invalid_data",
	NotFound:        "not_found",
	Conflict:        "conflict",
	Forbidden:       "permission_denied",
	Unauthenticated: "authentication_failed",
	RateLimited:     "rate_limit_exceeded",
	Unavailable:     "service_unavailable",
	Timeout:         "timeout",
	TooLarge:        "request_too_large",
	InvalidHost:     "invalid_host",
}

var httpStatus = [...]int{
	Internal:        http.StatusInternalServerError,
	InvalidRequest:  http.StatusBadRequest,
	InvalidData:     http.StatusBadRequest,
	NotFound:        http.StatusNotFound,
	Conflict:        http.StatusConflict,
	Forbidden:       http.StatusForbidden,
	Unauthenticated: http.StatusUnauthorized,
	RateLimited:     http.StatusTooManyRequests,
	Unavailable:     http.StatusServiceUnavailable,
	Timeout:         http.StatusGatewayTimeout,
	TooLarge:        http.StatusRequestEntityTooLarge,
	InvalidHost:     http.StatusBadRequest,
}

// Code is the wire code of the kind, e.g. "not_found".
func (k Kind) Code() string {
	if int(k) < len(codes) {
		return codes[k]
	}
	return codes[Internal]
}

// HTTPStatus is the HTTP status that answers an error of this kind.
func (k Kind) HTTPStatus() int {
	if int(k) < len(httpStatus) {
		return httpStatus[k]
	}
	return http.StatusInternalServerError
}

// String returns the wire code.
func (k Kind) String() string { return k.Code() }

// Classified is implemented by errors that know their kind.
type Classified interface {
	error
	ErrorKind() Kind
}

// Detailed is implemented by errors that carry wire details.
type Detailed interface {
	ErrorDetails() any
}

// Retryable is implemented by errors that tell when to retry.
type Retryable interface {
	RetryAfter() time.Duration
}

type sentinel struct {
	kind Kind
	msg  string
}

func (s *sentinel) Error() string   { return s.msg }
func (s *sentinel) ErrorKind() Kind { return s.kind }

// New returns a sentinel error of kind k with message msg. Each call returns
// a distinct value, to be compared with errors.Is.
func New(k Kind, msg string) error { return &sentinel{kind: k, msg: msg} }

// Of returns the kind of the first classified error in err's chain, or
// Internal when there is none.
func Of(err error) Kind {
	var c Classified
	if errors.As(err, &c) {
		return c.ErrorKind()
	}
	return Internal
}

// RetryAfterOf returns the retry hint of the first Retryable error in err's
// chain, or 0.
func RetryAfterOf(err error) time.Duration {
	var r Retryable
	if errors.As(err, &r) {
		return r.RetryAfter()
	}
	return 0
}

// DetailsOf returns the details of the first Detailed error in err's chain,
// or nil.
func DetailsOf(err error) any {
	var d Detailed
	if errors.As(err, &d) {
		return d.ErrorDetails()
	}
	return nil
}

// Field is one entry of invalid_data details: the JSON pointer of a
// request value and what is wrong with it (never the value itself).
type Field struct {
	Path string `json:"path"`
	Msg  string `json:"msg"`
}

// WithField wraps err with details naming one request value: a list of one
// Field, as schema failures list theirs.
func WithField(err error, path, msg string) error {
	return &detailed{err: err, details: []Field{{Path: path, Msg: msg}}}
}

type detailed struct {
	err     error
	details any
}

func (d *detailed) Error() string     { return d.err.Error() }
func (d *detailed) Unwrap() error     { return d.err }
func (d *detailed) ErrorDetails() any { return d.details }

package router

import (
	"encoding/json"

	"github.com/google/uuid"
	"github.com/pkgroute/pkgroute/auth"
	"github.com/pkgroute/pkgroute/internal/pagemeta"
)

// StatusCode is the status_code of a response envelope.
type StatusCode int

// The status codes of docs/protocol.md section 1.3.
const (
	StatusOK               StatusCode = 0 // success
	StatusError            StatusCode = 1 // failure that is not the client's input
	StatusInvalidData      StatusCode = 2 // malformed request or data, or a rejected business rule
	StatusPermissionDenied StatusCode = 3 // the caller lacks a required role
	StatusRateLimited      StatusCode = 4 // the caller's message rate is exceeded
)

// String returns the status name, e.g. "INVALID_DATA".
func (s StatusCode) String() string {
	switch s {
	case StatusOK:
		return "OK"
	case StatusError:
		return "ERROR"
	case StatusInvalidData:
		return "INVALID_DATA"
	case StatusPermissionDenied:
		return "PERMISSION_DENIED"
	case StatusRateLimited:
		return "RATE_LIMITED"
	}
	return "UNKNOWN"
}

// ID is the constraint of package identifiers: any integer type. Apps
// declare their own, e.g. type PkgID int32, with explicit constant values.
type ID interface {
	~int | ~int8 | ~int16 | ~int32 | ~int64
}

// Request is a parsed, validated request envelope.
type Request[T ID] struct {
	// PkgID names the operation.
	PkgID T
	// ReqID identifies the request; it is echoed in the reply.
	ReqID uuid.UUID
	// Method is carried for parity and ignored by routing.
	Method string
	// Data is the request's data object; "{}" when it was absent or null.
	Data json.RawMessage
	// Principal is the caller, nil for anonymous callers.
	Principal *auth.Principal
	// Route describes the package being called.
	Route *Route[T]
}

// Response is what a handler produces. Transports encode it as the response
// envelope of docs/protocol.md section 1.3.
type Response struct {
	// Status is the status_code.
	Status StatusCode
	// Meta is the pagination metadata. It is encoded only on a success of a
	// package registered with Paginated; otherwise meta is null.
	Meta any
	// Data is encoded as the data member. For a non-zero status it is an
	// *ErrorBody. json.RawMessage is written as is.
	Data any
	// Err is the error behind a non-zero status, for middleware and logs. It
	// is never encoded.
	Err error
}

// Metadata is the pagination metadata of docs/protocol.md section 1.4. It
// is the type of repository.Meta too: a repository.Result is a Paged
// output as is.
type Metadata = pagemeta.Meta

// Paged is implemented by handler outputs that are one page of a list: the
// typed handler puts the items in data and the metadata in meta. Handle
// requires the Paginated option for such outputs.
type Paged interface {
	// PageItems returns the items, encoded as the reply's data.
	PageItems() any
	// PageMeta returns the metadata (a Metadata), encoded as meta.
	PageMeta() any
}

// ErrorBody is the data of a non-zero status: {code, msg, details} and, for
// rate limits and unavailable dependencies, retry_after_ms.
type ErrorBody struct {
	Code         string `json:"code"`
	Msg          string `json:"msg"`
	Details      any    `json:"details"`
	RetryAfterMS *int64 `json:"retry_after_ms,omitempty"`
}

// Detail is one entry of the details of an invalid_data error.
type Detail struct {
	Path string `json:"path"`
	Msg  string `json:"msg"`
}

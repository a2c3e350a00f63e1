package repository

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"time"

	"github.com/pkgroute/pkgroute/internal/errkind"
)

// Sentinel errors. Test for them with errors.Is; errkind.Of gives their
// wire kinds.
var (
	// ErrNotFound means no row matched: sql.ErrNoRows, or an update or
	// delete that affected no row.
	ErrNotFound = errkind.New(errkind.NotFound, "not found")
	// ErrConflict means a unique constraint refused the write.
	ErrConflict = errkind.New(errkind.Conflict, "already exists")
	// ErrInvalidFilter means a filter named an unknown column or carried an
	// unacceptable value.
	ErrInvalidFilter = errkind.New(errkind.InvalidData, "invalid filter")
	// ErrInvalidPage means page or per_page is out of range.
	ErrInvalidPage = errkind.New(errkind.InvalidData, "invalid page")
	// ErrInvalidCursor means a pagination cursor could not be decoded or
	// was not issued for this table.
	ErrInvalidCursor = errkind.New(errkind.InvalidData, "invalid cursor")
	// ErrInvalidValue means the database refused a value it cannot hold:
	// PostgreSQL's data exceptions (SQLSTATE class 22: a number out of the
	// column's range, a date out of range, U+0000 in text, ...). Its wire
	// kind is invalid_data: the value came from the caller.
	ErrInvalidValue = errkind.New(errkind.InvalidData, "value out of the column's range or type")
	// ErrUnavailable means the database could not be reached: a refused,
	// broken or reset connection, or a server shutting down. Its wire kind
	// is service_unavailable, with a retry hint of one second.
	ErrUnavailable error = unavailable{}
)

type unavailable struct{}

func (unavailable) Error() string             { return "database unavailable" }
func (unavailable) ErrorKind() errkind.Kind   { return errkind.Unavailable }
func (unavailable) RetryAfter() time.Duration { return time.Second }

// Error is the error returned by repository operations that failed in the
// database. It names the operation and the table; Unwrap gives the sentinel
// (when the failure has a known meaning) and the driver's error.
type Error struct {
	Op    string // "get", "list", "create", ...
	Table string // the table's name
	Kind  error  // ErrNotFound, ErrConflict, ErrInvalidValue, ErrUnavailable (service_unavailable, retry hint) or nil
	Err   error  // the underlying error
}

// Error returns "op table: reason" ("op: reason" without a table).
func (e *Error) Error() string {
	where := e.Op
	if e.Table != "" {
		where += " " + e.Table
	}
	if e.Kind != nil {
		return where + ": " + e.Kind.Error()
	}
	return where + ": " + e.Err.Error()
}

// Unwrap returns the sentinel, if any, and the underlying error.
func (e *Error) Unwrap() []error {
	if e.Kind != nil {
		return []error{e.Kind, e.Err}
	}
	return []error{e.Err}
}

// MapError classifies err, returned by a query on table during op: no rows
// becomes ErrNotFound, a unique violation ErrConflict, a data exception
// ErrInvalidValue, a lost database ErrUnavailable, and the result is an
// *Error naming op and table. Errors that are already classified by this
// package, and nil, are returned unchanged. Typed repositories use it for
// their hand-written queries.
func MapError(op, table string, err error) error {
	if err == nil {
		return nil
	}
	var re *Error
	if errors.As(err, &re) {
		return err
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return &Error{Op: op, Table: table, Kind: ErrNotFound, Err: err}
	case IsUniqueViolation(err):
		return &Error{Op: op, Table: table, Kind: ErrConflict, Err: err}
	case IsDataException(err):
		return &Error{Op: op, Table: table, Kind: ErrInvalidValue, Err: err}
	case IsUnavailable(err):
		return &Error{Op: op, Table: table, Kind: ErrUnavailable, Err: err}
	}
	return &Error{Op: op, Table: table, Err: err}
}

// IsUnavailable reports whether err means the database could not be
// reached: a network error, a broken connection (driver.ErrBadConn, an
// unexpected EOF), or PostgreSQL's connection exceptions (SQLSTATE class 08)
// and shutdown codes (57P01-57P03). Context cancellation and deadlines are
// not: they belong to the caller.
func IsUnavailable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pg interface{ SQLState() string }
	if errors.As(err, &pg) {
		s := pg.SQLState()
		return strings.HasPrefix(s, "08") || s == "57P01" || s == "57P02" || s == "57P03"
	}
	var ne net.Error
	return errors.Is(err, driver.ErrBadConn) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &ne)
}

// IsDataException reports whether err is PostgreSQL's refusal of a value
// (SQLSTATE class 22, data exception: 22003 numeric value out of range,
// 22008 datetime field overflow, 22021 invalid byte sequence, 22P02
// invalid text representation, ...).
func IsDataException(err error) bool {
	var pg interface{ SQLState() string }
	return errors.As(err, &pg) && strings.HasPrefix(pg.SQLState(), "22")
}

// IsUniqueViolation reports whether err is a unique (or primary key)
// constraint violation: SQLSTATE 23505 on PostgreSQL, SQLITE_CONSTRAINT_UNIQUE
// or SQLITE_CONSTRAINT_PRIMARYKEY on SQLite.
func IsUniqueViolation(err error) bool {
	// pgconn.PgError (and other PostgreSQL drivers' errors) expose SQLState.
	var pg interface{ SQLState() string }
	if errors.As(err, &pg) {
		return pg.SQLState() == "23505"
	}
	// modernc.org/sqlite's *Error exposes the extended result code.
	var lite interface{ Code() int }
	if errors.As(err, &lite) {
		switch lite.Code() {
		case 2067, 1555: // SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY
			return true
		}
	}
	// Other SQLite drivers only say it in the message.
	return strings.Contains(err.Error(), "UNIQUE constraint failed")
}

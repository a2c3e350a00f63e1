package repository

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/pkgroute/pkgroute/internal/errkind"
	"github.com/stretchr/testify/assert"
)

type sqlStateErr string

func (e sqlStateErr) Error() string    { return "pg: " + string(e) }
func (e sqlStateErr) SQLState() string { return string(e) }

func TestMapErrorUnavailable(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, true},
		{driver.ErrBadConn, true},
		{fmt.Errorf("read: %w", io.ErrUnexpectedEOF), true},
		{sqlStateErr("57P01"), true},
		{sqlStateErr("08006"), true},
		{sqlStateErr("23505"), false},
		{sqlStateErr("42P01"), false},
		{context.DeadlineExceeded, false},
		{context.Canceled, false},
		{errors.New("syntax error"), false},
	} {
		err := MapError("get", "authors", tc.err)
		assert.Equal(t, tc.want, errors.Is(err, ErrUnavailable), "%v", tc.err)
		if tc.want {
			assert.Equal(t, errkind.Unavailable, errkind.Of(err))
			assert.Equal(t, time.Second, errkind.RetryAfterOf(err))
		}
	}
}

package repository

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/pkgroute/pkgroute/internal/errkind"
)

// TestMapErrorDataException checks that values PostgreSQL refuses (out of
// a column's range, U+0000 in text, a date out of range) are
// ErrInvalidValue, invalid_data on the wire, not internal errors.
func TestMapErrorDataException(t *testing.T) {
	for _, state := range []string{"22003", "22008", "22021", "22P02"} {
		err := MapError("create", "authors", sqlStateErr(state))
		assert.ErrorIs(t, err, ErrInvalidValue, state)
		assert.Equal(t, errkind.InvalidData, errkind.Of(err), state)
	}
	assert.NotErrorIs(t, MapError("get", "t", sqlStateErr("42P01")), ErrInvalidValue)

}

package repository_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/pkgroute/pkgroute/repository"
)

// TestPostgresDataExceptions checks that PostgreSQL's refusals of values
// map to ErrInvalidValue.
func TestPostgresDataExceptions(t *testing.T) {
	db := openPostgres(t)
	ctx := context.Background()
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{"SELECT ?::int4", []any{int64(1) << 40}},
		{"SELECT ?::timestamptz", []any{"300000-01-01T00:00:00Z"}},
		{"SELECT convert_from('\\x00'::bytea, 'UTF8')", nil},
	} {
		var out any
		err := db.NewRaw(q.sql, q.args...).Scan(ctx, &out)
		require.Error(t, err, q.sql)
		assert.True(t, repository.IsDataException(err), "%s: %v", q.sql, err)
		assert.True(t, errors.Is(repository.MapError("list", "t", err), repository.ErrInvalidValue), q.sql)
	}
}

package repository

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/schema"
)

// Limits on filter values.
const (
	// MaxContainsLen is the longest substring, in characters, that Contains
	// accepts.
	MaxContainsLen = 255
	// MaxInValues is the largest number of values that In accepts.
	MaxInValues = 1000
)

// Filter adds one condition to a query. Filters are combined with AND when
// several are given; Or groups them with OR. A filter returns an error
// wrapping ErrInvalidFilter when its column is unknown or its value is not
// acceptable. Values always reach the database as quoted literals, never as
// SQL text; columns are checked against the model's table.
type Filter func(w *Where) error

// Where is what a Filter writes its condition to.
type Where struct {
	table   *schema.Table
	dialect dialect.Name
	q       bun.QueryBuilder
	or      bool
}

// Column returns the qualified, quoted name of the model's column name (its
// SQL name, e.g. "created_at"), or an error wrapping ErrInvalidFilter when
// the table has no such column.
func (w *Where) Column(name string) (bun.Safe, error) {
	f, ok := w.table.FieldMap[name]
	if !ok || f.Tag.HasOption("scanonly") {
		if len(name) > 64 {
			name = name[:64] + "..."
		}
		return "", fmt.Errorf("%w: unknown column %q", ErrInvalidFilter, name)
	}
	return bun.Safe(string(w.table.SQLAlias) + "." + string(f.SQLName)), nil
}

// Dialect names the database's dialect, for filters whose SQL differs.
func (w *Where) Dialect() dialect.Name { return w.dialect }

// Add adds the condition query with args, formatted by bun (each ? is
// replaced by the quoted value of the next argument).
func (w *Where) Add(query string, args ...any) {
	if w.or {
		w.q = w.q.WhereOr(query, args...)
		return
	}
	w.q = w.q.Where(query, args...)
}

// apply runs the filters against q.
func applyFilters(q bun.QueryBuilder, table *schema.Table, d dialect.Name, filters []Filter) error {
	w := Where{table: table, dialect: d, q: q}
	for _, f := range filters {
		if f == nil {
			continue
		}
		if err := f(&w); err != nil {
			return err
		}
	}
	return nil
}

// Eq matches rows whose column equals value; a nil value matches NULL.
func Eq(column string, value any) Filter {
	return func(w *Where) error {
		col, err := w.Column(column)
		if err != nil {
			return err
		}
		if value == nil {
			w.Add("? IS NULL", col)
			return nil
		}
		w.Add("? = ?", col, value)
		return nil
	}
}

// In matches rows whose column equals one of values. An empty list
// matches nothing; more than MaxInValues values is an invalid filter.
func In[V any](column string, values []V) Filter {
	return func(w *Where) error {
		col, err := w.Column(column)
		if err != nil {
			return err
		}
		if len(values) > MaxInValues {
			return fmt.Errorf("%w: more than %d values for %q", ErrInvalidFilter, MaxInValues, column)
		}
		if len(values) == 0 {
			w.Add("1 = 0")
			return nil
		}
		w.Add("? IN (?)", col, bun.List(values))
		return nil
	}
}

// Contains matches rows whose column contains substr, ignoring case (ILIKE
// on PostgreSQL, lower() LIKE lower() on SQLite, whose built-in lower()
// folds ASCII only: package dbopen replaces it with one that folds all of
// Unicode).
// The wildcard characters %, _ and the escape character \ in substr match
// themselves. A substring longer than MaxContainsLen characters, or one
// that is not valid UTF-8 or holds a NUL, is an invalid filter.
func Contains(column, substr string) Filter {
	return func(w *Where) error {
		col, err := w.Column(column)
		if err != nil {
			return err
		}
		if !utf8.ValidString(substr) || strings.IndexByte(substr, 0) >= 0 {
			return fmt.Errorf("%w: %q must be valid text", ErrInvalidFilter, column)
		}
		if utf8.RuneCountInString(substr) > MaxContainsLen {
			return fmt.Errorf("%w: %q longer than %d characters", ErrInvalidFilter, column, MaxContainsLen)
		}
		pattern := "%" + escapeLike(substr) + "%"
		if w.Dialect() == dialect.PG {
			w.Add(`? ILIKE ? ESCAPE '\'`, col, pattern)
			return nil
		}
		w.Add(`lower(?) LIKE lower(?) ESCAPE '\'`, col, pattern)
		return nil
	}
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// escapeLike makes the LIKE wildcards in s literal, with \ as the escape.
func escapeLike(s string) string { return likeEscaper.Replace(s) }

// Or matches rows that satisfy at least one of filters, each of which adds
// one condition (Eq, In, Contains, Or). With no (non-nil) filters it
// matches nothing.
func Or(filters ...Filter) Filter {
	filters = slices.DeleteFunc(slices.Clone(filters), func(f Filter) bool { return f == nil })
	return func(w *Where) error {
		if len(filters) == 0 {
			w.Add("1 = 0")
			return nil
		}
		var ferr error
		group := func(q bun.QueryBuilder) bun.QueryBuilder {
			sub := Where{table: w.table, dialect: w.dialect, q: q, or: true}
			for _, f := range filters {
				if err := f(&sub); err != nil {
					ferr = err
					break
				}
			}
			return sub.q
		}
		if w.or {
			w.q = w.q.WhereGroup(" OR ", group)
		} else {
			w.q = w.q.WhereGroup(" AND ", group)
		}
		return ferr
	}
}

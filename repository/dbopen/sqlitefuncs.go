package dbopen

import (
	"database/sql/driver"
	"strconv"
	"strings"

	"modernc.org/sqlite"
)

// SQLite's own lower() folds ASCII letters only, so lower(x) LIKE lower(y),
// the case-insensitive match of repository.Contains on SQLite, missed "É"
// for "é". Every SQLite connection of the process gets a lower() that folds
// all of Unicode instead (SQLite lets an application function replace a
// built-in one).
func init() {
	sqlite.MustRegisterDeterministicScalarFunction("lower", 1, unicodeLower)
}

// unicodeLower is SQLite's lower() with Unicode case mapping: text is
// lowered, NULL stays NULL, numbers become their lowered text, as the
// built-in does, and blobs are returned as they are.
func unicodeLower(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	switch v := args[0].(type) {
	case string:
		return strings.ToLower(v), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64), nil
	}
	return args[0], nil
}

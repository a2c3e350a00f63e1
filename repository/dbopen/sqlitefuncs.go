package dbopen

import (
	"database/sql/driver"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

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

// unicodeLower is SQLite's lower() with Unicode case mapping. Like the
// built-in it returns NULL for NULL and text for anything else: numbers in
// SQLite's own text form (3.0 for a REAL three), blobs as their bytes. Text
// that is not valid UTF-8 has its ASCII letters lowered only, as the
// built-in does, so that no byte is replaced.
func unicodeLower(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	switch v := args[0].(type) {
	case nil:
		return nil, nil
	case string:
		return lowerText(v), nil
	case []byte:
		return lowerText(string(v)), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case float64:
		return sqliteReal(v), nil
	}
	return args[0], nil
}

func lowerText(s string) string {
	if utf8.ValidString(s) {
		return strings.ToLower(s)
	}
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// sqliteReal formats f as SQLite turns a REAL into text ("%!.15g": 15
// significant digits, always with a decimal point: 3.0, 0.3, 1.0e+100).
func sqliteReal(f float64) string {
	if math.IsInf(f, 0) {
		if f > 0 {
			return "Inf"
		}
		return "-Inf"
	}
	s := strconv.FormatFloat(f, 'g', 15, 64)
	if strings.ContainsAny(s, ".") {
		return s
	}
	if i := strings.IndexByte(s, 'e'); i >= 0 {
		return s[:i] + ".0" + s[i:]
	}
	return s + ".0"
}

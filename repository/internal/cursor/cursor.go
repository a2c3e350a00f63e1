// Package cursor makes and checks the opaque cursors of the repository's
// cursor pagination. It is a package of its own so that its fuzz target
// runs without the database drivers linked in.
package cursor

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// Codec makes opaque cursors: base64url of the last primary key
// (decimal for integer keys, the text for string keys, JSON otherwise)
// followed by a truncated SHA-256 over the key, the table name and the
// primary key, so that a cursor altered in transit or minted for another
// table is refused.
type Codec struct {
	// Key is mixed into the MAC; a secret key also refuses forged cursors.
	Key []byte
	// Table is the table the cursors are issued for.
	Table string
}

// macLen is the length of the truncated MAC.
const macLen = 12

// encoding refuses non-canonical encodings, so that each cursor has
// exactly one spelling.
var encoding = base64.RawURLEncoding.Strict()

// DefaultKey is used when no key is configured. It detects damaged and
// cross-table cursors; a secret key also refuses forged ones.
const DefaultKey = "pkgroute/repository cursor v1"

// sum appends the MAC of payload to dst. The MAC is truncated, so that
// SHA-256 length extension does not apply.
func (c Codec) sum(dst, payload []byte) []byte {
	buf := make([]byte, 0, 128)
	buf = append(buf, c.Key...)
	buf = append(buf, 0)
	buf = append(buf, c.Table...)
	buf = append(buf, 0)
	buf = append(buf, payload...)
	h := sha256.Sum256(buf)
	return append(dst, h[:macLen]...)
}

// Encode returns the cursor of primary key value pk.
func (c Codec) Encode(pk reflect.Value) (string, error) {
	var arr [64]byte
	payload := arr[:0]
	switch pk.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		payload = strconv.AppendInt(payload, pk.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		payload = strconv.AppendUint(payload, pk.Uint(), 10)
	case reflect.String:
		payload = append(payload, pk.String()...)
	default:
		b, err := json.Marshal(pk.Interface())
		if err != nil {
			return "", err
		}
		payload = b
	}
	payload = c.sum(payload, payload)
	return encoding.EncodeToString(payload), nil
}

// Decode checks s and stores its key in dst, a settable value of the
// primary key's type.
func (c Codec) Decode(s string, dst reflect.Value) error {
	if len(s) > 512 {
		return errors.New("too long")
	}
	// The decoder skips line breaks, which would give a cursor a second
	// spelling.
	if strings.ContainsAny(s, "\r\n") {
		return errors.New("malformed")
	}
	var arr [384]byte
	raw := arr[:encoding.DecodedLen(len(s))]
	n, err := encoding.Decode(raw, []byte(s))
	if err != nil || n < macLen {
		return errors.New("malformed")
	}
	raw = raw[:n]
	payload, mac := raw[:n-macLen], raw[n-macLen:]
	var want [macLen]byte
	if !hmac.Equal(mac, c.sum(want[:0], payload)) {
		return fmt.Errorf("not issued for %s", c.Table)
	}
	switch dst.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v, err := strconv.ParseInt(string(payload), 10, 64)
		if err != nil || dst.OverflowInt(v) {
			return errors.New("malformed key")
		}
		dst.SetInt(v)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v, err := strconv.ParseUint(string(payload), 10, 64)
		if err != nil || dst.OverflowUint(v) {
			return errors.New("malformed key")
		}
		dst.SetUint(v)
	case reflect.String:
		dst.SetString(string(payload))
	default:
		if err := json.Unmarshal(payload, dst.Addr().Interface()); err != nil {
			return errors.New("malformed key")
		}
	}
	return nil
}

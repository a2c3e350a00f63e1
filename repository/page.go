package repository

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"

	"github.com/pkgroute/pkgroute/internal/errkind"
)

// Pagination limits (PROTOCOL.md 1.4).
const (
	// DefaultPerPage is the page size when a Page gives none.
	DefaultPerPage = 20
	// MaxPerPage is the largest page size accepted.
	MaxPerPage = 1000
)

// Page asks for one page of a list. A nil Page or PerPage means the
// default (page 1, DefaultPerPage rows); given values are checked, never
// clamped: Page < 1 and PerPage outside 1..MaxPerPage are ErrInvalidPage.
//
// A nil Cursor selects offset mode. A non-nil Cursor selects cursor mode:
// "" asks for the first page and any other value must be a NextCursor
// returned earlier for the same table; Page is ignored.
//
// Page decodes from the wire's "page", "per_page" and "cursor" fields, and
// can be embedded in a command's input.
type Page struct {
	Page    *int    `json:"page,omitempty"`
	PerPage *int    `json:"per_page,omitempty"`
	Cursor  *string `json:"cursor,omitempty"`
}

// Offset returns the offset-mode request for page number page of perPage
// rows.
func Offset(page, perPage int) Page { return Page{Page: &page, PerPage: &perPage} }

// After returns the cursor-mode request for perPage rows after cursor (""
// for the first page).
func After(cursor string, perPage int) Page { return Page{PerPage: &perPage, Cursor: &cursor} }

// Meta describes a returned page; its JSON is the wire's "meta" object.
type Meta struct {
	Page       int     `json:"page"`
	PerPage    int     `json:"per_page"`
	Total      int     `json:"total"`
	Pages      int     `json:"pages"`
	NextCursor *string `json:"next_cursor"`
	HasMore    bool    `json:"has_more"`
}

// Result is one page of items and its Meta. Items is never nil, so that it
// encodes as [] when empty.
type Result[T any] struct {
	Items []T  `json:"items"`
	Meta  Meta `json:"meta"`
}

// normalize returns the page number and size p asks for, or
// ErrInvalidPage. In cursor mode the page number is ignored (and 1).
func (p Page) normalize() (page, perPage int, err error) {
	page, perPage = 1, DefaultPerPage
	if p.Page != nil && p.Cursor == nil {
		page = *p.Page
	}
	if p.PerPage != nil {
		perPage = *p.PerPage
	}
	if page < 1 {
		return 0, 0, errkind.WithField(fmt.Errorf("%w: page must be at least 1, got %d", ErrInvalidPage, page),
			"/page", "minimum: want >= 1")
	}
	if perPage < 1 {
		return 0, 0, errkind.WithField(fmt.Errorf("%w: per_page must be at least 1, got %d", ErrInvalidPage, perPage),
			"/per_page", "minimum: want >= 1")
	}
	if perPage > MaxPerPage {
		return 0, 0, errkind.WithField(fmt.Errorf("%w: per_page must be at most %d, got %d", ErrInvalidPage, MaxPerPage, perPage),
			"/per_page", fmt.Sprintf("maximum: want <= %d", MaxPerPage))
	}
	return page, perPage, nil
}

// pagesFor returns how many pages of perPage rows hold total rows.
func pagesFor(total, perPage int) int {
	if total <= 0 {
		return 0
	}
	return (total + perPage - 1) / perPage
}

// cursorCodec makes opaque cursors: base64url of the last primary key
// (decimal for integer keys, the text for string keys, JSON otherwise)
// followed by a truncated SHA-256 over the key, the table name and the
// primary key, so that a cursor altered in transit or minted for another
// table is refused.
type cursorCodec struct {
	key   []byte
	table string
}

const cursorMACLen = 12

// cursorEncoding refuses non-canonical encodings, so that each cursor has
// exactly one spelling.
var cursorEncoding = base64.RawURLEncoding.Strict()

// defaultCursorKey is used when Config.CursorKey is empty. It detects
// damaged and cross-table cursors; a secret key also refuses forged ones.
const defaultCursorKey = "pkgroute/repository cursor v1"

// sum appends the MAC of payload to dst. The MAC is truncated, so that
// SHA-256 length extension does not apply.
func (c cursorCodec) sum(dst, payload []byte) []byte {
	buf := make([]byte, 0, 128)
	buf = append(buf, c.key...)
	buf = append(buf, 0)
	buf = append(buf, c.table...)
	buf = append(buf, 0)
	buf = append(buf, payload...)
	h := sha256.Sum256(buf)
	return append(dst, h[:cursorMACLen]...)
}

// encode returns the cursor of primary key value pk.
func (c cursorCodec) encode(pk reflect.Value) (string, error) {
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
	return cursorEncoding.EncodeToString(payload), nil
}

// decode checks s and stores its key in dst, a settable value of the
// primary key's type.
func (c cursorCodec) decode(s string, dst reflect.Value) error {
	if len(s) > 512 {
		return fmt.Errorf("%w: too long", ErrInvalidCursor)
	}
	var arr [384]byte
	raw := arr[:cursorEncoding.DecodedLen(len(s))]
	n, err := cursorEncoding.Decode(raw, []byte(s))
	if err != nil || n < cursorMACLen {
		return fmt.Errorf("%w: malformed", ErrInvalidCursor)
	}
	raw = raw[:n]
	payload, mac := raw[:n-cursorMACLen], raw[n-cursorMACLen:]
	var want [cursorMACLen]byte
	if !hmac.Equal(mac, c.sum(want[:0], payload)) {
		return fmt.Errorf("%w: not issued for %s", ErrInvalidCursor, c.table)
	}
	switch dst.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v, err := strconv.ParseInt(string(payload), 10, 64)
		if err != nil || dst.OverflowInt(v) {
			return fmt.Errorf("%w: malformed key", ErrInvalidCursor)
		}
		dst.SetInt(v)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v, err := strconv.ParseUint(string(payload), 10, 64)
		if err != nil || dst.OverflowUint(v) {
			return fmt.Errorf("%w: malformed key", ErrInvalidCursor)
		}
		dst.SetUint(v)
	case reflect.String:
		dst.SetString(string(payload))
	default:
		if err := json.Unmarshal(payload, dst.Addr().Interface()); err != nil {
			return fmt.Errorf("%w: malformed key", ErrInvalidCursor)
		}
	}
	return nil
}

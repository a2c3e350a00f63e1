package repository

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// Pagination limits (PROTOCOL.md 1.4).
const (
	DefaultPerPage = 20
	MaxPerPage     = 1000
)

// Page asks for one page of a list. A nil Page or PerPage means the
// default (page 1, DefaultPerPage rows); given values are checked, never
// clamped: Page < 1 and PerPage outside 1..MaxPerPage are ErrInvalidPage.
//
// A nil Cursor selects offset mode. A non-nil Cursor selects cursor mode:
// "" asks for the first page and any other value must be a NextCursor
// returned earlier for the same table.
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

// normalize returns the page number and size p asks for, or ErrInvalidPage.
func (p Page) normalize() (page, perPage int, err error) {
	page, perPage = 1, DefaultPerPage
	if p.Page != nil {
		page = *p.Page
	}
	if p.PerPage != nil {
		perPage = *p.PerPage
	}
	if page < 1 {
		return 0, 0, fmt.Errorf("%w: page must be at least 1, got %d", ErrInvalidPage, page)
	}
	if perPage < 1 || perPage > MaxPerPage {
		return 0, 0, fmt.Errorf("%w: per_page must be between 1 and %d, got %d", ErrInvalidPage, MaxPerPage, perPage)
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

// cursorCodec makes opaque cursors: base64url of the JSON of the last
// primary key, followed by a truncated HMAC over the table name and the
// key, so that a cursor altered in transit or minted for another table is
// refused.
type cursorCodec struct {
	key   []byte
	table string
}

const cursorMACLen = 12

// defaultCursorKey is used when Config.CursorKey is empty. It detects
// damaged and cross-table cursors; a secret key also refuses forged ones.
const defaultCursorKey = "pkgroute/repository cursor v1"

func (c cursorCodec) mac(payload []byte) []byte {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(c.table))
	m.Write([]byte{0})
	m.Write(payload)
	return m.Sum(nil)[:cursorMACLen]
}

func (c cursorCodec) encode(pk any) (string, error) {
	payload, err := json.Marshal(pk)
	if err != nil {
		return "", err
	}
	buf := make([]byte, 0, len(payload)+cursorMACLen)
	buf = append(buf, payload...)
	buf = append(buf, c.mac(payload)...)
	return base64.RawURLEncoding.EncodeToString(buf), nil
}

// decode checks s and unmarshals its key into dst.
func (c cursorCodec) decode(s string, dst any) error {
	if len(s) > 512 {
		return fmt.Errorf("%w: too long", ErrInvalidCursor)
	}
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(raw) <= cursorMACLen {
		return fmt.Errorf("%w: malformed", ErrInvalidCursor)
	}
	payload, sum := raw[:len(raw)-cursorMACLen], raw[len(raw)-cursorMACLen:]
	if !hmac.Equal(sum, c.mac(payload)) {
		return fmt.Errorf("%w: not issued for %s", ErrInvalidCursor, c.table)
	}
	if err := json.Unmarshal(payload, dst); err != nil {
		return fmt.Errorf("%w: malformed key", ErrInvalidCursor)
	}
	return nil
}

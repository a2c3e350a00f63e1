package repository

import (
	"fmt"

	"github.com/pkgroute/pkgroute/internal/errkind"
)

// Pagination limits (docs/protocol.md 1.4).
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

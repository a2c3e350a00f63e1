package repository

import (
	"fmt"

	"github.com/pkgroute/pkgroute/internal/errkind"
	"github.com/pkgroute/pkgroute/internal/pagemeta"
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

// Meta describes a returned page; its JSON is the wire's "meta" object. It
// is the type of router.Metadata too.
type Meta = pagemeta.Meta

// Result is one page of items and its Meta. Items is never nil, so that it
// encodes as [] when empty.
type Result[T any] struct {
	Items []T  `json:"items"`
	Meta  Meta `json:"meta"`
}

// PageItems returns the items: with PageMeta it makes a Result the output
// of a paginated package (router.Paged), items in the reply's data and Meta
// in its meta.
// A nil Items is given as an empty list, so that data is [] and not null.
func (r Result[T]) PageItems() any {
	if r.Items == nil {
		return []T{}
	}
	return r.Items
}

// PageMeta returns the page's Meta (see PageItems).
func (r Result[T]) PageMeta() any { return r.Meta }

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

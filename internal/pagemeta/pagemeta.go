// Package pagemeta holds the one pagination metadata type of the module:
// router.Metadata and repository.Meta are aliases of Meta, so that a page
// read by a repository is a router's reply without conversion, while
// neither package imports the other.
package pagemeta

// Meta describes one page of a list; its JSON is the wire's "meta" object
// (docs/protocol.md section 1.4).
type Meta struct {
	// Page is the page number, from 1 (1 in cursor mode).
	Page int `json:"page"`
	// PerPage is the page size.
	PerPage int `json:"per_page"`
	// Total is the number of matching rows (offset mode).
	Total int `json:"total"`
	// Pages is the number of pages of PerPage rows that hold Total.
	Pages int `json:"pages"`
	// NextCursor continues a cursor-mode list; nil on the last page and in
	// offset mode.
	NextCursor *string `json:"next_cursor"`
	// HasMore reports whether a next page exists.
	HasMore bool `json:"has_more"`
}

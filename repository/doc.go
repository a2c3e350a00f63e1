// Package repository gives typed data access over bun: Repository[T] with
// Get, First, List, Create, Update, Delete, Exists, Count and Paginate for a
// bun model T, composable filters, pagination as docs/protocol.md 1.4 defines
// it, and transactions that commands can share.
//
// # Errors
//
// Failures carry wire kinds (internal/errkind): ErrNotFound (no row, or an
// update or delete that touched none), ErrConflict (a unique or primary key
// violation, on PostgreSQL and SQLite alike), ErrInvalidFilter,
// ErrInvalidPage and ErrInvalidCursor (invalid_data), and ErrUnavailable
// (service_unavailable with a retry hint: the database could not be
// reached). Any other database error is returned as an *Error naming the
// operation and the table, with the driver's error inside.
//
// # Filters
//
// Filters are functions: Eq, In, Contains and Or, or your own. Columns are
// checked against the model's table (unknown names are ErrInvalidFilter,
// never SQL) and values always travel as quoted literals. Contains is a
// case-insensitive substring match whose wildcard characters are literal.
//
// # Pagination
//
// Paginate reads a Page: offset mode (page and per_page, total and pages
// counted, has_more from one extra row) or cursor mode (keyset on the
// primary key, an opaque base64 cursor that is null on the last page). A
// CountCache, such as MemoryCountCache, keeps offset totals for a while and
// is invalidated by the repository's writes (those of a transaction once it
// has committed); totals counted inside a transaction bypass it.
//
// # Transactions
//
// A Repository runs on a bun.IDB. Built on a *bun.DB, it also follows the
// transaction that the context carries for that database: Transactor (which
// implements command.Transactor) puts it there, so that command.InTx makes
// every repository used by a command take part. WithDB binds a repository
// to a bun.Tx explicitly, and IDB gives hand-written queries the same
// handle the repositories use.
//
// Opening databases and running migrations live in the subpackages dbopen
// and dbmigrate.
package repository

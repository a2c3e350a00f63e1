package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/pkgroute/pkgroute/internal/errkind"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
)

// DefaultTable is the table of a BunSink whose config names none.
const DefaultTable = "user_actions"

// Errors of BunSink.
var (
	// ErrNotFound is returned by Get for an unknown id.
	ErrNotFound = errkind.New(errkind.NotFound, "audit entry not found")
	// ErrInvalidFilter is returned by Query for out-of-range paging.
	ErrInvalidFilter = errkind.New(errkind.InvalidData, "invalid audit filter")
)

// BunConfig configures a BunSink.
type BunConfig struct {
	// Table is the table name: a lower-case letter or underscore, then
	// lower-case letters, digits and underscores (names are used unquoted
	// in DDL, where PostgreSQL folds them to lower case), at most 52
	// characters in all (so that the
	// chain head table, Table + "_chain_head", fits PostgreSQL's 63).
	// Default DefaultTable.
	Table string
}

// BunSink stores entries in a table of PostgreSQL or SQLite through bun:
// one multi-row INSERT ... ON CONFLICT (id) DO NOTHING per batch. It also
// answers queries, prunes and verifies the hash chain.
//
// The head of the hash chain (the sequence number and hash of the last
// chained entry) is kept in a one-row table of its own, Table +
// "_chain_head", updated in the same transaction as each chained batch.
// Deleting the last entries therefore does not move the head: Verify
// reports them missing, and a new Logger continues the chain from the head,
// not from the last remaining entry.
type BunSink struct {
	db    bun.IDB
	table string
	head  string // the chain head table
	pg    bool
}

// ChainHeadSuffix is appended to the entries table's name to name the
// table holding the chain head.
const ChainHeadSuffix = "_chain_head"

var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,51}$`)

// NewBunSink returns a sink writing to db. It panics on an invalid table
// name or a dialect other than PostgreSQL and SQLite.
func NewBunSink(db bun.IDB, cfg BunConfig) *BunSink {
	if cfg.Table == "" {
		cfg.Table = DefaultTable
	}
	if !identRE.MatchString(cfg.Table) {
		panic(fmt.Sprintf("audit: invalid table name %q", cfg.Table))
	}
	s := &BunSink{db: db, table: cfg.Table, head: cfg.Table + ChainHeadSuffix}
	switch db.Dialect().Name() {
	case dialect.PG:
		s.pg = true
	case dialect.SQLite:
	default:
		panic(fmt.Sprintf("audit: unsupported dialect %s", db.Dialect().Name()))
	}
	return s
}

// CreateTable creates the table, its indexes and the chain head table when
// they do not exist.
func (s *BunSink) CreateTable(ctx context.Context) error {
	for _, q := range s.Statements() {
		if _, err := s.db.ExecContext(ctx, "?", bun.Safe(q)); err != nil {
			return fmt.Errorf("audit: create table %s: %w", s.table, err)
		}
	}
	return nil
}

// Statements returns the CREATE TABLE and CREATE INDEX statements of
// CreateTable (idempotent, IF NOT EXISTS) in the sink's dialect, for
// applications that keep their schema in migration files.
func (s *BunSink) Statements() []string {
	ts, js, txt, num := "TIMESTAMPTZ", "JSON", "TEXT", "DOUBLE PRECISION"
	idType, seqType := "UUID", "BIGINT"
	if !s.pg {
		ts, js, num, idType, seqType = "TIMESTAMP", "TEXT", "REAL", "TEXT", "INTEGER"
	}
	t := s.table
	stmts := []string{
		`CREATE TABLE IF NOT EXISTS ` + t + ` (
			id ` + idType + ` PRIMARY KEY,
			"timestamp" ` + ts + ` NOT NULL,
			user_id ` + txt + `,
			username ` + txt + `,
			user_roles ` + js + `,
			action_type ` + txt + ` NOT NULL,
			resource ` + txt + `,
			outcome ` + txt + ` NOT NULL,
			ip_address ` + txt + `,
			user_agent ` + txt + `,
			request_id ` + txt + `,
			request_data ` + js + `,
			response_status INTEGER,
			error_message ` + txt + `,
			duration_ms ` + num + `,
			chain_seq ` + seqType + `,
			prev_hash ` + txt + `,
			hash ` + txt + `
		)`,
	}
	for _, ix := range []struct{ name, cols string }{
		{"timestamp", `"timestamp"`},
		{"user_id", "user_id"},
		{"username", "username"},
		{"action_type", "action_type"},
		{"outcome", "outcome"},
		{"request_id", "request_id"},
		{"user_id_timestamp", `user_id, "timestamp"`},
		{"user_id_action_type", "user_id, action_type"},
	} {
		stmts = append(stmts, fmt.Sprintf(`CREATE INDEX IF NOT EXISTS ix_%s_%s ON %s (%s)`, t, ix.name, t, ix.cols))
	}
	// Only chained rows are indexed by sequence number.
	stmts = append(stmts, fmt.Sprintf(`CREATE INDEX IF NOT EXISTS ix_%s_chain_seq ON %s (chain_seq) WHERE chain_seq IS NOT NULL`, t, t))
	// The chain head: at most one row (id 1).
	stmts = append(stmts, `CREATE TABLE IF NOT EXISTS `+s.head+` (
			id INTEGER PRIMARY KEY CHECK (id = 1),
			chain_seq `+seqType+` NOT NULL,
			hash `+txt+` NOT NULL
		)`)
	return stmts
}

// row is the table's row.
type row struct {
	bun.BaseModel `bun:"table:user_actions"`

	ID             string    `bun:"id,pk"`
	Timestamp      time.Time `bun:"timestamp,notnull"`
	UserID         string    `bun:"user_id,nullzero"`
	Username       string    `bun:"username,nullzero"`
	UserRoles      string    `bun:"user_roles,nullzero"`
	ActionType     string    `bun:"action_type,notnull"`
	Resource       string    `bun:"resource,nullzero"`
	Outcome        string    `bun:"outcome,notnull"`
	IPAddress      string    `bun:"ip_address,nullzero"`
	UserAgent      string    `bun:"user_agent,nullzero"`
	RequestID      string    `bun:"request_id,nullzero"`
	RequestData    string    `bun:"request_data,nullzero"`
	ResponseStatus *int      `bun:"response_status"`
	ErrorMessage   string    `bun:"error_message,nullzero"`
	DurationMS     float64   `bun:"duration_ms"`
	ChainSeq       *int64    `bun:"chain_seq"`
	PrevHash       string    `bun:"prev_hash,nullzero"`
	Hash           string    `bun:"hash,nullzero"`
}

func (r *row) entry() (Entry, error) {
	id, err := uuid.Parse(r.ID)
	if err != nil {
		return Entry{}, fmt.Errorf("audit: stored id %q: %w", r.ID, err)
	}
	e := Entry{
		ID:             id,
		Timestamp:      r.Timestamp.UTC(),
		UserID:         r.UserID,
		Username:       r.Username,
		ActionType:     r.ActionType,
		Resource:       r.Resource,
		Outcome:        Outcome(r.Outcome),
		IPAddress:      r.IPAddress,
		UserAgent:      r.UserAgent,
		RequestID:      r.RequestID,
		ResponseStatus: r.ResponseStatus,
		ErrorMessage:   r.ErrorMessage,
		DurationMS:     r.DurationMS,
		PrevHash:       r.PrevHash,
		Hash:           r.Hash,
	}
	if r.RequestData != "" {
		e.RequestData = json.RawMessage(r.RequestData)
	}
	if r.UserRoles != "" {
		if err := json.Unmarshal([]byte(r.UserRoles), &e.UserRoles); err != nil {
			return Entry{}, fmt.Errorf("audit: stored roles of %s: %w", r.ID, err)
		}
	}
	if r.ChainSeq != nil {
		e.Seq = *r.ChainSeq
	}
	return e, nil
}

func (s *BunSink) tableExpr() bun.Ident { return bun.Ident(s.table) }

// insertColumns are the columns written by Write, in order.
const insertColumns = `id, "timestamp", user_id, username, user_roles, action_type, resource, outcome, ip_address, ` +
	`user_agent, request_id, request_data, response_status, error_message, duration_ms, chain_seq, prev_hash, hash`

// Write inserts entries in one multi-row statement; ids already stored are
// skipped. When the entries are chained, the chain head is set to the last
// of them in the same transaction (on PostgreSQL, in the same statement).
func (s *BunSink) Write(ctx context.Context, entries []Entry) error {
	if len(entries) == 0 {
		return nil
	}
	b := make([]byte, 0, 160+400*len(entries))
	last := chainLast(entries)
	var err error
	switch {
	case last == nil:
		_, err = s.db.ExecContext(ctx, "?", bun.Safe(s.appendInsert(b, entries)))
	case s.pg:
		// A data-modifying WITH runs both inserts in one statement.
		b = append(b, "WITH ins AS ("...)
		b = append(s.appendInsert(b, entries), ") "...)
		_, err = s.db.ExecContext(ctx, "?", bun.Safe(s.appendSetHead(b, last)))
	default:
		ins := s.appendInsert(b, entries)
		err = s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if _, err := tx.ExecContext(ctx, "?", bun.Safe(ins)); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, "?", bun.Safe(s.appendSetHead(nil, last)))
			return err
		})
	}
	if err != nil {
		return fmt.Errorf("audit: insert %d entries: %w", len(entries), err)
	}
	return nil
}

// chainLast returns the chained entry with the highest sequence number, or
// nil when no entry is chained.
func chainLast(entries []Entry) *Entry {
	var last *Entry
	for i := range entries {
		if e := &entries[i]; e.Hash != "" && (last == nil || e.Seq > last.Seq) {
			last = e
		}
	}
	return last
}

// appendSetHead appends the statement that makes e the chain head.
func (s *BunSink) appendSetHead(b []byte, e *Entry) []byte {
	b = append(b, `INSERT INTO "`...)
	b = append(b, s.head...)
	b = append(b, `" (id, chain_seq, hash) VALUES (1, `...)
	b = strconv.AppendInt(b, e.Seq, 10)
	b = append(b, ", "...)
	b = s.db.Dialect().AppendString(b, e.Hash)
	return append(b, ") ON CONFLICT (id) DO UPDATE SET chain_seq = excluded.chain_seq, hash = excluded.hash"...)
}

// appendInsert appends the INSERT statement of entries, with the values
// quoted by the database's dialect. Empty strings are stored as NULL.
func (s *BunSink) appendInsert(b []byte, entries []Entry) []byte {
	d := s.db.Dialect()
	text := func(v string) {
		if v == "" {
			b = append(b, "NULL"...)
			return
		}
		b = d.AppendString(b, v)
	}
	b = append(b, `INSERT INTO "`...)
	b = append(b, s.table...)
	b = append(b, `" (`...)
	b = append(b, insertColumns...)
	b = append(b, ") VALUES "...)
	var roles []byte
	for i := range entries {
		e := &entries[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, "('"...)
		b = append(b, e.ID.String()...)
		b = append(b, "',"...)
		b = d.AppendTime(b, e.Timestamp)
		b = append(b, ',')
		text(e.UserID)
		b = append(b, ',')
		text(e.Username)
		b = append(b, ',')
		if e.UserRoles == nil {
			b = append(b, "NULL"...)
		} else {
			roles, _ = json.Marshal(e.UserRoles)
			b = d.AppendString(b, string(roles))
		}
		b = append(b, ',')
		text(e.ActionType)
		b = append(b, ',')
		text(e.Resource)
		b = append(b, ',')
		text(string(e.Outcome))
		b = append(b, ',')
		text(e.IPAddress)
		b = append(b, ',')
		text(e.UserAgent)
		b = append(b, ',')
		text(e.RequestID)
		b = append(b, ',')
		text(string(e.RequestData))
		b = append(b, ',')
		if e.ResponseStatus == nil {
			b = append(b, "NULL"...)
		} else {
			b = strconv.AppendInt(b, int64(*e.ResponseStatus), 10)
		}
		b = append(b, ',')
		text(e.ErrorMessage)
		b = append(b, ',')
		b = strconv.AppendFloat(b, e.DurationMS, 'f', -1, 64)
		b = append(b, ',')
		if e.Hash == "" {
			b = append(b, "NULL,NULL,NULL"...)
		} else {
			b = strconv.AppendInt(b, e.Seq, 10)
			b = append(b, ',')
			text(e.PrevHash)
			b = append(b, ',')
			text(e.Hash)
		}
		b = append(b, ')')
	}
	return append(b, " ON CONFLICT (id) DO NOTHING"...)
}

// ChainHead returns the stored chain head: the sequence number and hash of
// the last chained entry written, read from the chain head table (0 and ""
// when no chained entry was ever written). Deleting entries does not change
// it.
func (s *BunSink) ChainHead(ctx context.Context) (int64, string, error) {
	seq, hash, _, err := s.chainHead(ctx)
	return seq, hash, err
}

func (s *BunSink) chainHead(ctx context.Context) (seq int64, hash string, found bool, err error) {
	err = s.db.NewSelect().ModelTableExpr("?", bun.Ident(s.head)).Column("chain_seq", "hash").
		Where("id = 1").Scan(ctx, &seq, &hash)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", false, nil
	}
	if err != nil {
		return 0, "", false, fmt.Errorf("audit: chain head: %w", err)
	}
	return seq, hash, true, nil
}

// Filter selects entries for Query; it decodes from the JSON of a listing
// request. Empty fields do not filter. Start and
// End bound the timestamp, both inclusive. Page (default 1) and PerPage
// (default 20, at most 1000) select the page.
type Filter struct {
	UserID     string    `json:"user_id,omitempty"`
	Username   string    `json:"username,omitempty"`
	ActionType string    `json:"action_type,omitempty"`
	Resource   string    `json:"resource,omitempty"`
	Outcome    Outcome   `json:"outcome,omitempty"`
	Start      time.Time `json:"start_date,omitzero"`
	End        time.Time `json:"end_date,omitzero"`
	Page       int       `json:"page,omitempty"`
	PerPage    int       `json:"per_page,omitempty"`
}

// Meta describes a page of entries, as the "meta" of a paginated reply in
// offset mode.
type Meta struct {
	Page       int     `json:"page"`
	PerPage    int     `json:"per_page"`
	Total      int     `json:"total"`
	Pages      int     `json:"pages"`
	NextCursor *string `json:"next_cursor"`
	HasMore    bool    `json:"has_more"`
}

// Result is one page of entries, newest first. Items is never nil.
type Result struct {
	Items []Entry `json:"items"`
	Meta  Meta    `json:"meta"`
}

// PageItems returns the entries, for paginated replies.
func (r Result) PageItems() any { return r.Items }

// PageMeta returns the page's metadata, for paginated replies.
func (r Result) PageMeta() any { return r.Meta }

func (s *BunSink) where(q *bun.SelectQuery, f Filter) *bun.SelectQuery {
	if f.UserID != "" {
		q = q.Where("user_id = ?", f.UserID)
	}
	if f.Username != "" {
		q = q.Where("username = ?", f.Username)
	}
	if f.ActionType != "" {
		q = q.Where("action_type = ?", f.ActionType)
	}
	if f.Resource != "" {
		q = q.Where("resource = ?", f.Resource)
	}
	if f.Outcome != "" {
		q = q.Where("outcome = ?", string(f.Outcome))
	}
	if !f.Start.IsZero() {
		q = q.Where(`"timestamp" >= ?`, f.Start.UTC())
	}
	if !f.End.IsZero() {
		q = q.Where(`"timestamp" <= ?`, f.End.UTC())
	}
	return q
}

// Query returns one page of the entries matching f, newest first.
func (s *BunSink) Query(ctx context.Context, f Filter) (Result, error) {
	if f.Page == 0 {
		f.Page = 1
	}
	if f.PerPage == 0 {
		f.PerPage = 20
	}
	if f.Page < 1 {
		return Result{}, errkind.WithField(fmt.Errorf("%w: page must be at least 1, got %d", ErrInvalidFilter, f.Page),
			"/page", "minimum: want >= 1")
	}
	if f.PerPage < 1 {
		return Result{}, errkind.WithField(fmt.Errorf("%w: per_page must be at least 1, got %d", ErrInvalidFilter, f.PerPage),
			"/per_page", "minimum: want >= 1")
	}
	if f.PerPage > 1000 {
		return Result{}, errkind.WithField(fmt.Errorf("%w: per_page must be at most 1000, got %d", ErrInvalidFilter, f.PerPage),
			"/per_page", "maximum: want <= 1000")
	}
	total64, err := s.where(s.db.NewSelect().ModelTableExpr("?", s.tableExpr()), f).Count(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("audit: count entries: %w", err)
	}
	total := int(total64)
	var rows []row
	err = s.where(s.db.NewSelect().Model(&rows).ModelTableExpr("? AS ?", s.tableExpr(), bun.Ident("row")), f).
		OrderExpr(`"timestamp" DESC, id DESC`).
		Limit(int64(f.PerPage + 1)).Offset(int64((f.Page - 1) * f.PerPage)).Scan(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("audit: query entries: %w", err)
	}
	res := Result{Items: make([]Entry, 0, min(len(rows), f.PerPage)), Meta: Meta{
		Page: f.Page, PerPage: f.PerPage, Total: total, Pages: (total + f.PerPage - 1) / f.PerPage,
		HasMore: len(rows) > f.PerPage,
	}}
	for i := range rows[:min(len(rows), f.PerPage)] {
		e, err := rows[i].entry()
		if err != nil {
			return Result{}, err
		}
		res.Items = append(res.Items, e)
	}
	return res, nil
}

// Get returns the entry with id, or an error wrapping ErrNotFound.
func (s *BunSink) Get(ctx context.Context, id string) (Entry, error) {
	u, err := uuid.Parse(strings.TrimSpace(id))
	if err != nil {
		return Entry{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	var r row
	err = s.db.NewSelect().Model(&r).ModelTableExpr("? AS ?", s.tableExpr(), bun.Ident("row")).
		Where("id = ?", u.String()).Limit(1).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return Entry{}, fmt.Errorf("%w: %s", ErrNotFound, u)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("audit: get entry: %w", err)
	}
	return r.entry()
}

// Prune deletes the entries older than olderThan and returns how many.
// Verify a pruned chain from the oldest remaining link (ChainVerifier's
// AfterSeq and AfterHash).
func (s *BunSink) Prune(ctx context.Context, olderThan time.Duration) (int64, error) {
	cutoff := time.Now().Add(-olderThan).UTC()
	res, err := s.db.NewDelete().ModelTableExpr("?", s.tableExpr()).Where(`"timestamp" < ?`, cutoff).Exec(ctx)
	if err != nil {
		return 0, fmt.Errorf("audit: prune: %w", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}

// Verify checks the chained rows in sequence order with v and then against
// the stored chain head, and returns the first break (a *Break) or nil.
// Besides an edited, deleted, inserted or reordered row, it reports rows
// missing at the end (the last row is older than the head), a last row
// that is not the head, and chained rows without a head. Rows written
// while Verify runs are checked as they come. A table whose rows were all
// pruned verifies only with v.AfterSeq and v.AfterHash set to the head.
func (s *BunSink) Verify(ctx context.Context, v *ChainVerifier) error {
	// The head is read first: every row up to it is committed by then.
	headSeq, headHash, found, err := s.chainHead(ctx)
	if err != nil {
		return fmt.Errorf("audit: verify: %w", err)
	}
	var (
		lastSeq int64
		lastID  string
	)
	for {
		var rows []row
		q := s.db.NewSelect().Model(&rows).ModelTableExpr("? AS ?", s.tableExpr(), bun.Ident("row")).
			Where("chain_seq IS NOT NULL")
		if lastID != "" {
			q = q.Where("(chain_seq > ? OR (chain_seq = ? AND id > ?))", lastSeq, lastSeq, lastID)
		}
		err := q.OrderExpr("chain_seq ASC, id ASC").Limit(1000).Scan(ctx)
		if err != nil {
			return fmt.Errorf("audit: verify: %w", err)
		}
		for i := range rows {
			e, err := rows[i].entry()
			if err != nil {
				return err
			}
			if b := v.Check(e); b != nil {
				return b
			}
			if found && e.Seq == headSeq && e.Hash != headHash {
				return &Break{Seq: e.Seq, ID: e.ID.String(), Reason: "hash does not match the chain head"}
			}
		}
		if len(rows) < 1000 {
			break
		}
		last := rows[len(rows)-1]
		lastSeq, lastID = *last.ChainSeq, last.ID
	}
	seq, _, checked := v.Head()
	switch {
	case found && seq < headSeq:
		return &Break{Seq: seq + 1, Reason: fmt.Sprintf("missing: the chain head is at seq %d, the last entry at seq %d", headSeq, seq)}
	case !found && checked > 0:
		// The first chained batch may have been committed after the head
		// was read.
		if _, _, found, err = s.chainHead(ctx); err != nil {
			return fmt.Errorf("audit: verify: %w", err)
		}
		if !found {
			return &Break{Seq: seq, Reason: "the chain head is missing"}
		}
	}
	return nil
}

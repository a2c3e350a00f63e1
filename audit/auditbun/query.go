package auditbun

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/pkgroute/pkgroute/audit"
	"github.com/pkgroute/pkgroute/internal/errkind"
	"github.com/uptrace/bun"
)

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

func (r *row) entry() (audit.Entry, error) {
	id, err := uuid.Parse(r.ID)
	if err != nil {
		return audit.Entry{}, fmt.Errorf("auditbun: stored id %q: %w", r.ID, err)
	}
	e := audit.Entry{
		ID:             id,
		Timestamp:      r.Timestamp.UTC(),
		UserID:         r.UserID,
		Username:       r.Username,
		ActionType:     r.ActionType,
		Resource:       r.Resource,
		Outcome:        audit.Outcome(r.Outcome),
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
			return audit.Entry{}, fmt.Errorf("auditbun: stored roles of %s: %w", r.ID, err)
		}
	}
	if r.ChainSeq != nil {
		e.Seq = *r.ChainSeq
	}
	return e, nil
}

func (s *Sink) tableExpr() bun.Ident { return bun.Ident(s.table) }

// Filter selects entries for Query; it decodes from the JSON of a listing
// request. Empty fields do not filter. Start and End bound the timestamp,
// both inclusive. Page (default 1) and PerPage (default 20, at most 1000)
// select the page.
type Filter struct {
	UserID     string        `json:"user_id,omitempty"`
	Username   string        `json:"username,omitempty"`
	ActionType string        `json:"action_type,omitempty"`
	Resource   string        `json:"resource,omitempty"`
	Outcome    audit.Outcome `json:"outcome,omitempty"`
	Start      time.Time     `json:"start_date,omitzero"`
	End        time.Time     `json:"end_date,omitzero"`
	Page       int           `json:"page,omitempty"`
	PerPage    int           `json:"per_page,omitempty"`
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
	Items []audit.Entry `json:"items"`
	Meta  Meta          `json:"meta"`
}

// PageItems returns the entries, for paginated replies.
func (r Result) PageItems() any { return r.Items }

// PageMeta returns the page's metadata, for paginated replies.
func (r Result) PageMeta() any { return r.Meta }

func (s *Sink) where(q *bun.SelectQuery, f Filter) *bun.SelectQuery {
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

// Query returns one page of the entries matching f, newest first, or an
// error wrapping ErrInvalidFilter for out-of-range paging.
func (s *Sink) Query(ctx context.Context, f Filter) (Result, error) {
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
		return Result{}, fmt.Errorf("auditbun: count entries: %w", err)
	}
	total := int(total64)
	var rows []row
	err = s.where(s.db.NewSelect().Model(&rows).ModelTableExpr("? AS ?", s.tableExpr(), bun.Ident("row")), f).
		OrderExpr(`"timestamp" DESC, id DESC`).
		Limit(int64(f.PerPage + 1)).Offset(int64((f.Page - 1) * f.PerPage)).Scan(ctx)
	if err != nil {
		return Result{}, fmt.Errorf("auditbun: query entries: %w", err)
	}
	res := Result{Items: make([]audit.Entry, 0, min(len(rows), f.PerPage)), Meta: Meta{
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
func (s *Sink) Get(ctx context.Context, id string) (audit.Entry, error) {
	u, err := uuid.Parse(strings.TrimSpace(id))
	if err != nil {
		return audit.Entry{}, fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	var r row
	err = s.db.NewSelect().Model(&r).ModelTableExpr("? AS ?", s.tableExpr(), bun.Ident("row")).
		Where("id = ?", u.String()).Limit(1).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return audit.Entry{}, fmt.Errorf("%w: %s", ErrNotFound, u)
	}
	if err != nil {
		return audit.Entry{}, fmt.Errorf("auditbun: get entry: %w", err)
	}
	return r.entry()
}

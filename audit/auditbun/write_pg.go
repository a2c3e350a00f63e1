package auditbun

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pkgroute/pkgroute/audit"
)

// errNoPgx means the connection is not one of pgx's database/sql driver.
var errNoPgx = errors.New("not a pgx connection")

// writePG copies entries into the table with COPY and moves the chain head
// in the same transaction. COPY has no ON CONFLICT: when an id is already
// stored (a batch retried after an ambiguous failure, or replayed from a
// journal), the transaction is rolled back and the batch is written again
// with INSERT ... ON CONFLICT (id) DO NOTHING.
func (s *Sink) writePG(ctx context.Context, entries []audit.Entry) error {
	conn, err := s.sqldb.Conn(ctx)
	if err != nil {
		return err
	}
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return errNoPgx
		}
		return s.copyTx(ctx, c.Conn(), entries)
	})
	_ = conn.Close()
	var pe *pgconn.PgError
	switch {
	case errors.Is(err, errNoPgx):
		return s.writeInsert(ctx, entries)
	case errors.As(err, &pe) && pe.Code == "23505": // unique_violation
		return s.writeInsert(ctx, entries)
	}
	return err
}

// copyTx runs COPY and the head's upsert in one transaction on c.
func (s *Sink) copyTx(ctx context.Context, c *pgx.Conn, entries []audit.Entry) (err error) {
	tx, err := c.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback(context.WithoutCancel(ctx))
		}
	}()
	src := &copySource{entries: entries, i: -1}
	n, err := tx.CopyFrom(ctx, pgx.Identifier{s.table}, columns, src)
	if err != nil {
		return err
	}
	if n != int64(len(entries)) {
		return fmt.Errorf("copied %d of %d rows", n, len(entries))
	}
	if last := chainLast(entries); last != nil {
		b := make([]byte, 0, 256)
		b = append(b, `INSERT INTO "`...)
		b = append(b, s.head...)
		b = append(b, `" (id, chain_seq, hash) VALUES (1, $1, $2)`...)
		if _, err := tx.Exec(ctx, string(s.appendHeadConflict(b)), last.Seq, last.Hash); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}

// copySource feeds entries to CopyFrom. Values point into the entries
// (pgx dereferences them), so that a row costs no allocation; empty
// strings are NULL.
type copySource struct {
	entries []audit.Entry
	i       int
	vals    [18]any
	roles   []byte // the JSON of every row's roles
}

func (c *copySource) Next() bool {
	c.i++
	return c.i < len(c.entries)
}

func (c *copySource) Err() error { return nil }

func (c *copySource) Values() ([]any, error) {
	e := &c.entries[c.i]
	v := &c.vals
	v[0] = (*[16]byte)(&e.ID)
	v[1] = &e.Timestamp
	v[2] = text(&e.UserID)
	v[3] = text(&e.Username)
	v[4] = nil
	if e.UserRoles != nil {
		// CopyFrom encodes each row before asking for the next one, so the
		// buffer can be reused.
		c.roles = appendRoles(c.roles[:0], e.UserRoles)
		v[4] = &c.roles
	}
	v[5] = text(&e.ActionType)
	v[6] = text(&e.Resource)
	v[7] = text((*string)(&e.Outcome))
	v[8] = text(&e.IPAddress)
	v[9] = text(&e.UserAgent)
	v[10] = text(&e.RequestID)
	v[11] = nil
	if len(e.RequestData) > 0 {
		// Not *json.RawMessage: pgx would compact it with json.Marshal.
		v[11] = (*[]byte)(&e.RequestData)
	}
	v[12] = nil
	if e.ResponseStatus != nil {
		v[12] = e.ResponseStatus
	}
	v[13] = text(&e.ErrorMessage)
	v[14] = &e.DurationMS
	v[15], v[16], v[17] = nil, nil, nil
	if e.Hash != "" {
		v[15] = &e.Seq
		v[16] = text(&e.PrevHash)
		v[17] = &e.Hash
	}
	return v[:], nil
}

// text returns p, or nil (NULL) when *p is empty.
func text(p *string) any {
	if *p == "" {
		return nil
	}
	return p
}

package auditbun

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
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
	var n int64
	raw, err := s.rawCopyOK(ctx, c)
	switch {
	case err != nil:
		return err
	case raw:
		bp := copyBufs.Get().(*[]byte)
		defer copyBufs.Put(bp)
		*bp = appendCopyRows((*bp)[:0], entries)
		var tag pgconn.CommandTag
		tag, err = c.PgConn().CopyFrom(ctx, bytes.NewReader(*bp), s.copySQL)
		n = tag.RowsAffected()
	default:
		n, err = tx.CopyFrom(ctx, pgx.Identifier{s.table}, columns, &copySource{entries: entries, i: -1})
	}
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

// copySource feeds entries to CopyFrom. CopyFrom encodes each row before
// it asks for the next, so one set of pgtype values is reused for every
// row and a row costs no allocation but its two JSON values. Empty strings
// are NULL, except in the NOT NULL columns action_type and outcome.
type copySource struct {
	entries []audit.Entry
	i       int
	vals    [18]any
	id      pgtype.UUID
	ts      pgtype.Timestamptz
	text    [11]pgtype.Text
	status  pgtype.Int4
	dur     pgtype.Float8
	seq     pgtype.Int8
	roles   []byte // the JSON of the row's roles
}

func (c *copySource) Next() bool {
	c.i++
	return c.i < len(c.entries)
}

func (c *copySource) Err() error { return nil }

func (c *copySource) Values() ([]any, error) {
	e := &c.entries[c.i]
	v := &c.vals
	c.id = pgtype.UUID{Bytes: e.ID, Valid: true}
	v[0] = &c.id
	c.ts = pgtype.Timestamptz{Time: e.Timestamp, Valid: true}
	v[1] = &c.ts
	v[2] = c.setText(0, e.UserID, false)
	v[3] = c.setText(1, e.Username, false)
	v[4] = nil
	if e.UserRoles != nil {
		c.roles = appendRoles(c.roles[:0], e.UserRoles)
		v[4] = c.roles
	}
	v[5] = c.setText(2, e.ActionType, true)
	v[6] = c.setText(3, e.Resource, false)
	v[7] = c.setText(4, string(e.Outcome), true)
	v[8] = c.setText(5, e.IPAddress, false)
	v[9] = c.setText(6, e.UserAgent, false)
	v[10] = c.setText(7, e.RequestID, false)
	v[11] = nil
	if len(e.RequestData) > 0 {
		// Not a json.RawMessage: pgx would compact it with json.Marshal.
		v[11] = []byte(e.RequestData)
	}
	v[12] = nil
	if e.ResponseStatus != nil {
		c.status = pgtype.Int4{Int32: int32(*e.ResponseStatus), Valid: true}
		v[12] = &c.status
	}
	v[13] = c.setText(8, e.ErrorMessage, false)
	c.dur = pgtype.Float8{Float64: e.DurationMS, Valid: true}
	v[14] = &c.dur
	v[15], v[16], v[17] = nil, nil, nil
	if e.Hash != "" {
		c.seq = pgtype.Int8{Int64: e.Seq, Valid: true}
		v[15] = &c.seq
		v[16] = c.setText(9, e.PrevHash, false)
		v[17] = c.setText(10, e.Hash, true)
	}
	return v[:], nil
}

// setText sets the i-th text value to s and returns it, or nil (NULL)
// when s is empty and not notNull.
func (c *copySource) setText(i int, s string, notNull bool) any {
	if s == "" && !notNull {
		return nil
	}
	c.text[i] = pgtype.Text{String: s, Valid: true}
	return &c.text[i]
}

// pgColumnTypes are the types of columns (format_type's names) in the
// table that CreateTable makes.
var pgColumnTypes = []string{"uuid", "timestamp with time zone", "text", "text", "json", "text", "text", "text",
	"text", "text", "text", "json", "integer", "text", "double precision", "bigint", "text", "text"}

// rawCopyOK reports whether the table's columns have the types of
// CreateTable, which appendCopyRows encodes; it asks once. Otherwise (a
// table migrated by hand, say) pgx encodes the rows for the types found.
func (s *Sink) rawCopyOK(ctx context.Context, c *pgx.Conn) (bool, error) {
	switch s.rawCopy.Load() {
	case rawCopyYes:
		return true, nil
	case rawCopyNo:
		return false, nil
	}
	rows, err := c.Query(ctx, `SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute
		WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped`, `"`+s.table+`"`)
	if err != nil {
		return false, err
	}
	types := map[string]string{}
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			rows.Close()
			return false, err
		}
		types[name] = typ
	}
	if err := rows.Err(); err != nil {
		return false, err
	}
	ok := true
	for i, col := range columns {
		ok = ok && types[col] == pgColumnTypes[i]
	}
	if ok {
		s.rawCopy.Store(rawCopyYes)
	} else {
		s.rawCopy.Store(rawCopyNo)
	}
	return ok, nil
}

// States of Sink.rawCopy.
const (
	rawCopyUnknown = iota
	rawCopyYes
	rawCopyNo
)

// copyBufs holds the buffers of COPY's binary data.
var copyBufs = sync.Pool{New: func() any { return new([]byte) }}

// pgEpoch is PostgreSQL's time zero, in Unix microseconds.
var pgEpoch = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()

// appendCopyRows appends entries in COPY's binary format (header, one
// tuple per entry, trailer), for the column types of CreateTable. Empty
// strings are NULL, except in the NOT NULL columns action_type and
// outcome.
func appendCopyRows(b []byte, entries []audit.Entry) []byte {
	b = slices.Grow(b, 21+len(entries)*700)
	b = append(b, "PGCOPY\n\377\r\n\000"...)
	b = binary.BigEndian.AppendUint32(b, 0)                                                   // flags
	b = binary.BigEndian.AppendUint32(b, 0)                                                   // header extension
	null := func(b []byte) []byte { return binary.BigEndian.AppendUint32(b, math.MaxUint32) } // -1
	field := func(b []byte, v string) []byte {
		b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
		return append(b, v...)
	}
	text := func(b []byte, v string) []byte {
		if v == "" {
			return null(b)
		}
		return field(b, v)
	}
	for i := range entries {
		e := &entries[i]
		b = binary.BigEndian.AppendUint16(b, uint16(len(columns)))
		b = binary.BigEndian.AppendUint32(b, 16)
		b = append(b, e.ID[:]...)
		b = binary.BigEndian.AppendUint32(b, 8)
		b = binary.BigEndian.AppendUint64(b, uint64(e.Timestamp.UnixMicro()-pgEpoch))
		b = text(b, e.UserID)
		b = text(b, e.Username)
		if e.UserRoles == nil {
			b = null(b)
		} else {
			// The length is written once the JSON is.
			at := len(b)
			b = appendRoles(append(b, 0, 0, 0, 0), e.UserRoles)
			binary.BigEndian.PutUint32(b[at:], uint32(len(b)-at-4))
		}
		b = field(b, e.ActionType)
		b = text(b, e.Resource)
		b = field(b, string(e.Outcome))
		b = text(b, e.IPAddress)
		b = text(b, e.UserAgent)
		b = text(b, e.RequestID)
		b = text(b, string(e.RequestData))
		if e.ResponseStatus == nil {
			b = null(b)
		} else {
			b = binary.BigEndian.AppendUint32(b, 4)
			b = binary.BigEndian.AppendUint32(b, uint32(int32(*e.ResponseStatus)))
		}
		b = text(b, e.ErrorMessage)
		b = binary.BigEndian.AppendUint32(b, 8)
		b = binary.BigEndian.AppendUint64(b, math.Float64bits(e.DurationMS))
		if e.Hash == "" {
			b = null(null(null(b)))
		} else {
			b = binary.BigEndian.AppendUint32(b, 8)
			b = binary.BigEndian.AppendUint64(b, uint64(e.Seq))
			b = text(b, e.PrevHash)
			b = field(b, e.Hash)
		}
	}
	return binary.BigEndian.AppendUint16(b, math.MaxUint16) // -1: the end
}

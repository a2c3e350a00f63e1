package auditbun

import (
	"context"
	"database/sql"
	"strings"

	"github.com/google/uuid"

	"github.com/pkgroute/pkgroute/audit"
)

// SQLite's INSERT statements have a fixed number of rows, so that each is
// prepared once and reused: a batch is cut into chunks of these sizes,
// largest first (at most three of each smaller size). Statements of many
// rows would stay under SQLite's limit of 32,766 parameters (1,820 rows
// of 18 columns), but the driver binds the n parameters of a statement in
// O(n^2): 8 rows (144 parameters) took the least CPU per row, against
// 4, 16, 32, 64 and 1,024.
var sqliteChunks = [...]int{8, 2, 1}

// headStmt is the key of the chain head's upsert among the statements.
const headStmt = 0

// writeSQLite writes entries with the prepared multi-row INSERT ... ON
// CONFLICT (id) DO NOTHING statements and moves the chain head, all in one
// transaction.
func (s *Sink) writeSQLite(ctx context.Context, entries []audit.Entry) (err error) {
	// Ids, timestamps and roles are written as text into one buffer, and
	// the rows' values are substrings of it.
	buf := make([]byte, 0, len(entries)*(36+32+24))
	offs := make([]int, 0, 3*len(entries)+1)
	for i := range entries {
		e := &entries[i]
		offs = append(offs, len(buf))
		buf = appendUUID(buf, e.ID)
		offs = append(offs, len(buf))
		buf = appendTime(buf, e.Timestamp)
		offs = append(offs, len(buf))
		if e.UserRoles != nil {
			buf = appendRoles(buf, e.UserRoles)
		}
	}
	offs = append(offs, len(buf))
	texts := string(buf)

	// The statements are prepared before the transaction takes a
	// connection: a pool of one has no other to prepare them on.
	var plan []*sql.Stmt
	for done := 0; done < len(entries); {
		n := chunkSize(len(entries) - done)
		st, err := s.stmt(ctx, n)
		if err != nil {
			return err
		}
		plan = append(plan, st)
		done += n
	}
	last := chainLast(entries)
	var setHead *sql.Stmt
	if last != nil {
		if setHead, err = s.stmt(ctx, headStmt); err != nil {
			return err
		}
	}

	tx, err := s.sqldb.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	// The statements run without ctx's cancellation (which costs the
	// driver a goroutine per execution); ctx is checked between them, and
	// its end rolls the transaction back.
	exCtx := context.WithoutCancel(ctx)
	args := make([]any, 0, len(columns)*min(len(entries), sqliteChunks[0]))
	done := 0
	for _, st := range plan {
		n := chunkSize(len(entries) - done)
		if err := ctx.Err(); err != nil {
			return err
		}
		args = args[:0]
		for i := done; i < done+n; i++ {
			e := &entries[i]
			o := offs[3*i : 3*i+4]
			var roles any
			if e.UserRoles != nil {
				roles = texts[o[2]:o[3]]
			}
			args = append(args, texts[o[0]:o[1]], texts[o[1]:o[2]], null(e.UserID), null(e.Username), roles,
				e.ActionType, null(e.Resource), string(e.Outcome), null(e.IPAddress), null(e.UserAgent),
				null(e.RequestID), null(string(e.RequestData)), e.ResponseStatus, null(e.ErrorMessage), e.DurationMS)
			if e.Hash == "" {
				args = append(args, nil, nil, nil)
			} else {
				args = append(args, e.Seq, null(e.PrevHash), e.Hash)
			}
		}
		if _, err := tx.StmtContext(exCtx, st).ExecContext(exCtx, args...); err != nil {
			return err
		}
		done += n
	}
	if last != nil {
		if _, err := tx.StmtContext(ctx, setHead).ExecContext(ctx, last.Seq, last.Hash); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// chunkSize returns the largest statement size not above n.
func chunkSize(n int) int {
	for _, c := range sqliteChunks {
		if c <= n {
			return c
		}
	}
	return 1
}

// null returns v, or nil (NULL) when v is empty.
func null(v string) any {
	if v == "" {
		return nil
	}
	return v
}

// stmt returns the prepared INSERT of n rows, or the chain head's upsert
// for headStmt.
func (s *Sink) stmt(ctx context.Context, n int) (*sql.Stmt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.stmts[n]; st != nil {
		return st, nil
	}
	var q string
	if n == headStmt {
		q = string(s.appendHeadConflict([]byte(`INSERT INTO "` + s.head + `" (id, chain_seq, hash) VALUES (1, ?, ?)`)))
	} else {
		row := "(" + strings.Repeat("?,", len(columns)-1) + "?)"
		var b strings.Builder
		b.Grow(64 + len(insertColumns) + n*(len(row)+1) + 32)
		b.WriteString(`INSERT OR IGNORE INTO "` + s.table + `" (` + insertColumns + `) VALUES `)
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(row)
		}
		// OR IGNORE: no statement journal
		q = b.String()
	}
	st, err := s.sqldb.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if s.stmts == nil {
		s.stmts = map[int]*sql.Stmt{}
	}
	s.stmts[n] = st
	return st, nil
}

// appendUUID appends id in its canonical text form, as uuid.UUID.String.
func appendUUID(b []byte, id uuid.UUID) []byte {
	const hexDigits = "0123456789abcdef"
	for i, c := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return b
}

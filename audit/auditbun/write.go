package auditbun

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pkgroute/pkgroute/audit"
	"github.com/uptrace/bun"
)

// columns are the columns written by Write, in order.
var columns = []string{"id", "timestamp", "user_id", "username", "user_roles", "action_type", "resource", "outcome",
	"ip_address", "user_agent", "request_id", "request_data", "response_status", "error_message", "duration_ms",
	"chain_seq", "prev_hash", "hash"}

// insertColumns is columns as SQL.
const insertColumns = `id, "timestamp", user_id, username, user_roles, action_type, resource, outcome, ip_address, ` +
	`user_agent, request_id, request_data, response_status, error_message, duration_ms, chain_seq, prev_hash, hash`

// timeLayout is how SQLite stores timestamps: bun's text form, which
// sorts as time does for UTC values.
const timeLayout = "2006-01-02 15:04:05.999999-07:00"

// writeInsert writes entries with one multi-row INSERT whose values are
// quoted in the statement: the path for a caller's transaction or
// connection, and for a PostgreSQL batch that COPY found partly stored.
func (s *Sink) writeInsert(ctx context.Context, entries []audit.Entry) error {
	if i := slices.IndexFunc(entries, hasNUL); i >= 0 {
		// Text in SQL holds no NUL byte.
		return fmt.Errorf("%w: entry %s has a NUL byte", audit.ErrRejected, entries[i].ID)
	}
	b := make([]byte, 0, 160+400*len(entries))
	last := chainLast(entries)
	switch {
	case last == nil:
		_, err := s.db.ExecContext(ctx, "?", bun.Safe(s.appendInsert(b, entries)))
		return err
	case s.pg:
		// A data-modifying WITH runs both inserts in one statement.
		b = append(b, "WITH ins AS ("...)
		b = append(s.appendInsert(b, entries), ") "...)
		_, err := s.db.ExecContext(ctx, "?", bun.Safe(s.appendSetHead(b, last)))
		return err
	default:
		ins := s.appendInsert(b, entries)
		return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
			if _, err := tx.ExecContext(ctx, "?", bun.Safe(ins)); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, "?", bun.Safe(s.appendSetHead(nil, last)))
			return err
		})
	}
}

// appendSetHead appends the statement that makes e the chain head unless
// the stored head is further.
func (s *Sink) appendSetHead(b []byte, e *audit.Entry) []byte {
	b = append(b, `INSERT INTO "`...)
	b = append(b, s.head...)
	b = append(b, `" (id, chain_seq, hash) VALUES (1, `...)
	b = strconv.AppendInt(b, e.Seq, 10)
	b = append(b, ", "...)
	b = s.db.Dialect().AppendString(b, e.Hash)
	return s.appendHeadConflict(append(b, ')'))
}

// appendHeadConflict appends the ON CONFLICT clause of the chain head's
// upsert: the head moves only forward.
func (s *Sink) appendHeadConflict(b []byte) []byte {
	b = append(b, ` ON CONFLICT (id) DO UPDATE SET chain_seq = excluded.chain_seq, hash = excluded.hash WHERE excluded.chain_seq > "`...)
	b = append(b, s.head...)
	return append(b, `".chain_seq`...)
}

// appendInsert appends the INSERT statement of entries, with the values
// quoted by the database's dialect. Empty strings are stored as NULL,
// except in the NOT NULL columns action_type and outcome.
func (s *Sink) appendInsert(b []byte, entries []audit.Entry) []byte {
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
			roles = appendRoles(roles[:0], e.UserRoles)
			b = d.AppendString(b, string(roles))
		}
		b = append(b, ',')
		b = d.AppendString(b, e.ActionType) // NOT NULL: empty is stored as such
		b = append(b, ',')
		text(e.Resource)
		b = append(b, ',')
		b = d.AppendString(b, string(e.Outcome))
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

// appendRoles appends roles as a JSON array, as json.Marshal writes it.
func appendRoles(b []byte, roles []string) []byte {
	b = append(b, '[')
	for i, r := range roles {
		if i > 0 {
			b = append(b, ',')
		}
		if plainJSON(r) {
			b = append(b, '"')
			b = append(b, r...)
			b = append(b, '"')
			continue
		}
		q, _ := json.Marshal(r) // strings always encode
		b = append(b, q...)
	}
	return append(b, ']')
}

// plainJSON reports whether json.Marshal writes s between quotes as is.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// appendTime appends t in timeLayout, in UTC.
func appendTime(b []byte, t time.Time) []byte { return t.UTC().AppendFormat(b, timeLayout) }

// hasNUL reports whether a text of e holds a NUL byte.
func hasNUL(e audit.Entry) bool {
	for _, v := range []string{e.UserID, e.Username, e.ActionType, e.Resource, string(e.Outcome), e.IPAddress,
		e.UserAgent, e.RequestID, string(e.RequestData), e.ErrorMessage, e.PrevHash, e.Hash} {
		if strings.IndexByte(v, 0) >= 0 {
			return true
		}
	}
	return slices.ContainsFunc(e.UserRoles, func(r string) bool { return strings.IndexByte(r, 0) >= 0 })
}

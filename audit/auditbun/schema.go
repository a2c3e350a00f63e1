package auditbun

import (
	"context"
	"fmt"

	"github.com/uptrace/bun"
)

// index is a secondary index of the entries table, named ix_<table>_<name>.
type index struct{ name, cols, where string }

// indexes are the secondary indexes that the queries of Query, Verify and
// Prune use (see docs/audit.md for their plans).
var indexes = []index{
	{name: "timestamp", cols: `"timestamp"`},
	{name: "user_id_timestamp", cols: `user_id, "timestamp"`},
	{name: "username", cols: "username"},
	{name: "action_type", cols: "action_type"},
	{name: "outcome", cols: "outcome"},
	{name: "user_id_action_type", cols: "user_id, action_type"},
	// Only chained rows are indexed by sequence number.
	{name: "chain_seq", cols: "chain_seq", where: "chain_seq IS NOT NULL"},
}

// droppedIndexes were created by earlier versions and are used by no
// query: Statements drops them from existing tables.
var droppedIndexes = []string{"user_id", "request_id"}

// CreateTable creates the table, its indexes and the chain head table when
// they do not exist, and drops the indexes of earlier versions that no
// query uses.
func (s *Sink) CreateTable(ctx context.Context) error {
	for _, q := range s.Statements() {
		if _, err := s.db.ExecContext(ctx, "?", bun.Safe(q)); err != nil {
			return fmt.Errorf("auditbun: create table %s: %w", s.table, err)
		}
	}
	return nil
}

// Statements returns the statements of CreateTable in the sink's dialect,
// for applications that keep their schema in migration files: CREATE TABLE
// and CREATE INDEX (IF NOT EXISTS), and DROP INDEX IF EXISTS for indexes
// that earlier versions created and no query uses. Each is idempotent.
func (s *Sink) Statements() []string {
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
	for _, ix := range indexes {
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS ix_%s_%s ON %s (%s)`, t, ix.name, t, ix.cols)
		if ix.where != "" {
			q += " WHERE " + ix.where
		}
		stmts = append(stmts, q)
	}
	for _, name := range droppedIndexes {
		stmts = append(stmts, fmt.Sprintf(`DROP INDEX IF EXISTS ix_%s_%s`, t, name))
	}
	// The chain head: at most one row (id 1).
	stmts = append(stmts, `CREATE TABLE IF NOT EXISTS `+s.head+` (
			id INTEGER PRIMARY KEY CHECK (id = 1),
			chain_seq `+seqType+` NOT NULL,
			hash `+txt+` NOT NULL
		)`)
	return stmts
}

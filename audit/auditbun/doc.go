// Package auditbun stores audit entries in PostgreSQL or SQLite through
// bun: Sink implements audit.Sink, audit.ChainSink and audit.Pruner, and
// answers the queries of an audit log listing (Query, Get) and the
// verification of the hash chain (Verify).
//
// Entries live in one table (DefaultTable, "user_actions") and the head of
// the hash chain in a one-row table beside it ("user_actions_chain_head").
// CreateTable creates both; Statements returns the same DDL for migration
// files.
//
// Writes are batched and idempotent (an id already stored is skipped), and
// each chained batch moves the chain head in the same transaction, only
// forward. On PostgreSQL over pgx's database/sql driver a batch is sent
// with COPY; on SQLite with prepared multi-row INSERT statements, in one
// transaction. Open SQLite files in WAL mode with synchronous=NORMAL
// (repository/dbopen does).
//
// The package is apart from audit so that programs that log entries
// without storing them in SQL do not link bun.
package auditbun

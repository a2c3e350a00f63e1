// Package dbmigrate applies embedded SQL migrations with bun/migrate, with
// files per dialect where PostgreSQL and SQLite differ.
//
// Files live at the root of an fs.FS (usually an embed.FS):
//
//	001_authors.up.sql            runs on every dialect
//	001_authors.down.sql
//	002_search.pg.up.sql          runs on PostgreSQL only ...
//	002_search.sqlite.up.sql      ... and this one on SQLite only
//	003_backfill.tx.up.sql        runs inside a transaction
//	003_backfill.pg.tx.up.sql     dialect and transaction together
//
// A dialect-specific file replaces the generic file of the same migration
// for its dialect; files of other dialects are ignored. The number orders
// the migrations; a file may hold several statements, or use bun's
// "--bun:split" line between statements.
//
// Every migration set keeps its own history table (Config.Table), so that
// several packages can migrate one database independently.
package dbmigrate

// Package audit records who did what, when and with which outcome.
//
// An Entry describes one action. A Logger takes entries from producers
// (Log never calls the database), holds them in a bounded buffer and
// writes them to a Sink in batches from the goroutine of Run. Failed batch
// writes are retried with backoff while their entries stay in the buffer;
// entries are dropped only when the buffer is full (or when Close runs out of
// time), and every drop is counted by reason, so that at any time
//
//	produced = written + dropped + pending
//
// and after Close returns pending is zero. Writes are idempotent: entries
// carry client-generated ids and sinks ignore ids they already hold, so a
// batch retried after an ambiguous failure is not stored twice.
//
// SlogSink writes entries as log records. The SQL sink, for PostgreSQL and
// SQLite, is in package audit/auditbun (so that programs that do not store
// entries in SQL do not link bun): it also answers queries, retention and
// verification of the hash chain.
//
// Entries are redacted before they are queued: values under sensitive keys
// of the request data (a listed key, or a key ending in one, such as
// "new_password"; see DefaultRedactKeys and Redactor) become "[REDACTED]" and
// bearer tokens or JWT-shaped strings anywhere in an entry are replaced.
//
// Middleware audits authenticated HTTP requests with net/http only; the
// router middleware that audits packages lives in router/routermw.
package audit

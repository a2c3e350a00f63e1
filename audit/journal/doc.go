// Package journal is a durable audit.Buffer: the entries a Logger accepted
// and its sink has not stored yet are kept in append-only files in a local
// directory, so that a database outage only grows the journal and a
// restart or a crash loses nothing that was synced.
//
// # Use
//
// Open the journal with a directory and a Config (its zero value means the
// defaults below), hand it to the Logger as its buffer, Close it at
// shutdown:
//
//	j, err := journal.Open(ctx, "/var/lib/app/audit", journal.Config{Fsync: journal.FsyncBatch})
//
// Append stages entries in memory and returns the position of the last
// one; it never waits for I/O. A goroutine started by Open (the flusher)
// writes everything staged since its last write in one write, then fsyncs
// according to the policy: entries appended concurrently share one write
// and one fsync (group commit). Sync(ctx, pos) waits until the entries up
// to pos are written (and fsynced under FsyncBatch). The consumer (the
// Logger's writer) Peeks the oldest entries, stores them, and Acks them.
// Open replays the entries not acknowledged in the previous run.
//
// # Guarantees
//
// With every policy, an entry is in memory only between Append and the
// flusher's next write (usually microseconds, at most one fsync later):
// entries appended but not synced may be lost in a crash. Once Sync
// returns nil:
//
//   - FsyncBatch (the default): the entries are on stable storage. They
//     survive a process crash (kill -9) and a power loss or kernel crash,
//     as far as the storage honours fsync. The cost is an fsync per write;
//     concurrent appenders share it.
//   - FsyncInterval: the entries are in the operating system's page cache
//     and are fsynced within Config.SyncInterval (default 100 ms). They
//     survive a process crash; a power loss loses what was written in the
//     last interval.
//   - FsyncNever: the entries are in the page cache; the operating system
//     writes them back when it decides (on Linux, usually within 30 s).
//     They survive a process crash; a power loss may lose any amount of
//     recent entries, and may damage more than the tail (see below).
//
// Close writes and fsyncs everything staged, whatever the policy.
//
// Ack replaces a small state file atomically (write, fsync, rename, fsync
// of the directory), whatever the policy, so it costs about two fsyncs:
// acknowledge in batches. Entries acknowledged are never replayed; entries
// stored by the sink but not yet acknowledged are replayed after a crash,
// so the sink must ignore an entry whose ID it already holds. Segment
// files that hold only acknowledged entries are deleted (again at Open, if
// a crash came first).
//
// # Damage
//
// Every record carries a CRC-32C and its position. At Open, a damaged
// record at the end of the last segment, after which no valid record
// follows (a write cut short by a crash, or zeros where the file was
// extended but its data never written), is a torn tail: the file is
// truncated there, a warning is logged and Stats counts it. Any other
// damage (a bad record followed by valid ones, a bad record in an older
// segment, a bad header, a missing segment, a bad state file) fails Open
// with an error wrapping ErrCorrupt that names the file and offset:
// nothing is skipped silently.
//
// # When full
//
// Config.MaxBytes (default 1 GiB) bounds the unshipped records, staged and
// written. An Append that would exceed it fails with an error wrapping
// audit.ErrFull and adds none of its entries; Acks make room. The journal
// never drops an entry on its own: the Logger decides, by its mode,
// whether a refused entry is counted as dropped or refuses the request.
//
// After a failed write (a full disk, an I/O error) the journal stops
// writing: Sync and Append return the error, the entries it holds in memory
// can still be peeked and acknowledged, and Close returns the error. A new
// Open resumes from what the files hold.
//
// # Hash chain
//
// The Logger chains entries before it appends them. ChainHead returns the
// Seq and Hash of the last chained entry appended; at Open it comes from
// the last chained record unshipped, else from the state file (the head
// among the entries acknowledged), else, for a journal that never held a
// chained entry, from Config.Head (the sink's head).
//
// # Files
//
// The directory holds a lock file (LOCK, locked with flock while a
// Journal holds the directory), the state file (ack) and segment files
// named by the position of their first record (00000000000000000001.seg).
// A new segment starts when the current one reaches Config.SegmentBytes
// (default 64 MiB). Integers are little endian.
//
// A segment starts with a 32-byte header: magic "PRJL", format version
// (uint32, 1), position of its first record (uint64), journal byte offset
// of its first record (uint64, for accounting), CRC-32C of the preceding
// 24 bytes (uint32), 4 zero bytes. Records follow back to back:
//
//	payload length n  uint32
//	checksum          uint32, CRC-32C of the payload, the length and the position
//	position          uint64, 1 for the first entry ever appended, then +1
//	payload           n bytes
//
// The payload is one audit.Entry, version 1: a version byte (1); a flags
// byte (ResponseStatus set, UserRoles not nil, RequestData not nil); ID
// (16 bytes); Timestamp (varint, microseconds since the Unix epoch, read
// back in UTC); ResponseStatus (varint); DurationMS (8 bytes, IEEE 754);
// Seq (varint); the length of RequestData (uvarint); UserID, Username,
// ActionType, Resource, Outcome, IPAddress, UserAgent, RequestID,
// ErrorMessage, PrevHash and Hash (each a uvarint length and the bytes);
// the number of UserRoles (uvarint) and each role; RequestData's bytes. A
// reader refuses versions and flags it does not know.
//
// The state file holds magic "PRJA", format version (uint32, 1), the
// position of the last acknowledged entry and the journal byte offset
// after it (uint64 each), the chain head among the acknowledged entries
// (seq as uint64, a byte saying whether there is one, the hash as a
// uvarint length and bytes), and a CRC-32C of all that.
//
// In memory, recent records are kept encoded (Config.CacheBytes, default
// 16 MiB), so that a consumer that keeps up never reads the files;
// one that fell behind reads them back sequentially.
package journal

package journal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/pkgroute/pkgroute/audit"
)

// Errors of the journal.
var (
	// ErrClosed is returned by the methods of a closed Journal.
	ErrClosed = errors.New("journal: closed")
	// ErrLocked is returned by Open when another Journal (in this process
	// or another) holds the directory.
	ErrLocked = errors.New("journal: directory in use")
	// ErrCorrupt is returned (wrapped, with the file and offset) by Open
	// and Peek when a record or the state file is damaged anywhere but at
	// the tail of the last segment.
	ErrCorrupt = errors.New("journal: corrupt")
)

// Fsync is the policy that says when written records are forced to stable
// storage. The package documentation describes what each one guarantees.
type Fsync int

// The fsync policies.
const (
	// FsyncBatch fsyncs every write (one per group of entries appended
	// together); Sync returns once its entries are fsynced. The default.
	FsyncBatch Fsync = iota
	// FsyncInterval fsyncs at most once per Config.SyncInterval; Sync
	// returns once its entries are written to the file.
	FsyncInterval
	// FsyncNever leaves flushing to the operating system (and to Close);
	// Sync returns once its entries are written to the file.
	FsyncNever
)

// String returns the policy's name: "batch", "interval" or "never".
func (f Fsync) String() string {
	switch f {
	case FsyncBatch:
		return "batch"
	case FsyncInterval:
		return "interval"
	case FsyncNever:
		return "never"
	}
	return fmt.Sprintf("Fsync(%d)", int(f))
}

// ParseFsync returns the policy named s ("batch", "interval", "never").
func ParseFsync(s string) (Fsync, error) {
	for _, f := range []Fsync{FsyncBatch, FsyncInterval, FsyncNever} {
		if s == f.String() {
			return f, nil
		}
	}
	return 0, fmt.Errorf("journal: unknown fsync policy %q (batch, interval, never)", s)
}

// Defaults of Config.
const (
	DefaultSyncInterval = 100 * time.Millisecond
	DefaultMaxBytes     = 1 << 30
	DefaultSegmentBytes = 64 << 20
	DefaultCacheBytes   = 16 << 20
)

// Config configures a Journal. The zero value means the documented
// defaults.
type Config struct {
	// Fsync is the fsync policy; default FsyncBatch.
	Fsync Fsync
	// SyncInterval is the period of FsyncInterval; default 100 ms.
	SyncInterval time.Duration
	// MaxBytes bounds the size of the unshipped records (staged and
	// written, framing included); default 1 GiB. An Append that would
	// exceed it fails with an error wrapping audit.ErrFull and adds
	// nothing; acknowledging entries makes room again.
	MaxBytes int64
	// SegmentBytes is the size after which the journal starts a new
	// segment file; default 64 MiB. A segment can exceed it by one write.
	SegmentBytes int64
	// CacheBytes bounds the recent records kept in memory (encoded, in
	// chunks of CacheBytes/16 between 4 KiB and 1 MiB) so that Peek does
	// not read them back from the files; default 16 MiB. Records not yet
	// written and the chunk being filled are always kept.
	CacheBytes int64
	// Head returns the head of the hash chain when the journal has never
	// held a chained entry (usually the sink's chain head). Nil means no
	// chain yet (0, ""). When it fails, Open fails.
	Head func(ctx context.Context) (seq int64, hash string, err error)
	// Logger receives the journal's warnings (torn tails truncated at
	// Open) and errors (failed writes); nil discards them.
	Logger *slog.Logger

	// wrapFile, when set, wraps every segment file opened for writing
	// (fault injection in tests).
	wrapFile func(segmentFile) segmentFile
}

func (c *Config) setDefaults() error {
	switch {
	case c.Fsync < FsyncBatch || c.Fsync > FsyncNever:
		return fmt.Errorf("journal: unknown fsync policy %d", c.Fsync)
	case c.SyncInterval < 0, c.MaxBytes < 0, c.SegmentBytes < 0, c.CacheBytes < 0:
		return errors.New("journal: negative SyncInterval, MaxBytes, SegmentBytes or CacheBytes")
	}
	if c.SyncInterval == 0 {
		c.SyncInterval = DefaultSyncInterval
	}
	if c.MaxBytes == 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.SegmentBytes == 0 {
		c.SegmentBytes = DefaultSegmentBytes
	}
	if c.CacheBytes == 0 {
		c.CacheBytes = DefaultCacheBytes
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Stats describes a Journal's content and what it did since Open.
type Stats struct {
	// Entries and Bytes are the unshipped entries (staged and written)
	// and the size of their records.
	Entries int
	Bytes   int64
	// Staged counts the entries appended but not yet written to a file.
	Staged int
	// Segments counts the segment files.
	Segments int
	// Replayed counts the unshipped entries found at Open.
	Replayed int
	// TornRecords and TornBytes describe the torn tail truncated at Open
	// (a record cut short by a crash): at most one record, and the bytes
	// removed.
	TornRecords int
	TornBytes   int64
	// Appended, Refused and Acked count entries since Open: appended,
	// refused because the journal was full, acknowledged.
	Appended uint64
	Refused  uint64
	Acked    uint64
	// Writes and Fsyncs count the writes (one per group of staged
	// entries) and fsyncs of segment files since Open.
	Writes uint64
	Fsyncs uint64
	// Cached counts the entries held in memory (encoded, staged or
	// cached); DiskReads the entries Peek read back from the files since
	// Open.
	Cached    int
	DiskReads uint64
}

// item is an entry held in memory with the journal byte offset after its
// record and the record's size.
type item struct {
	e    audit.Entry
	end  uint64
	size uint32
}

// segInfo describes a segment file.
type segInfo struct {
	first uint64 // position of its first record
	next  uint64 // position after its last record
	base  uint64 // journal byte offset of its first record
}

// Journal is an audit.ChainBuffer that keeps its entries in append-only
// segment files in a directory, so that they survive a restart or a crash.
// Append stages entries in memory; a background goroutine writes what is
// staged in one write and fsyncs according to Config.Fsync. Open replays
// the entries not acknowledged in the previous run. A Journal is safe for
// concurrent use; Peek and Ack are meant for one consumer.
type Journal struct {
	dir  string
	cfg  Config
	log  *slog.Logger
	lock *os.File

	kick    chan struct{} // Append: something is staged
	quit    chan struct{} // Close: drain and stop
	stopped chan struct{} // the flusher has returned

	// Owned by the flusher.
	active     segmentFile
	activeSize int64
	activeNext uint64   // position after the active segment's last record
	dirty      bool     // written and not fsynced
	fwritten   uint64   // last position written
	scratch    []byte   // joins the records of several chunks into one write
	ranges     [][]byte // the parts of chunks to write
	unsynced   []string // segments closed without fsync (FsyncNever), for Close

	// readMu serializes Peek and Ack; it is taken before mu.
	readMu  sync.Mutex
	ra      []item // entries read back from files, positions raStart...
	raStart uint64
	rd      reader
	peekBuf []byte

	mu         sync.Mutex
	next       uint64 // position of the next entry appended
	nextByte   uint64 // journal byte offset after the last record appended
	written    uint64 // last position written
	durable    uint64 // last position Sync waits for (written or fsynced)
	acked      uint64 // last position acknowledged
	ackedByte  uint64
	ackHead    chainHead // head of the chain among the acknowledged entries
	head       chainHead // head of the chain among all entries appended
	chunks     []*chunk  // records cacheStart...next-1: staged, then cached
	free       []*chunk  // evicted chunks, for reuse
	cacheStart uint64
	cacheBytes int64
	chunkSize  int
	segs       []segInfo
	err        error // the write that failed; sticky
	closed     bool
	done       bool          // the flusher has written its last
	progress   chan struct{} // closed and replaced when written/durable/done change
	stats      Stats
}

// Open opens the journal in dir, creating the directory when needed, and
// replays the entries not acknowledged in the previous run. A torn tail
// (a record cut short by a crash) is truncated, logged and counted in
// Stats; damage anywhere else fails Open with an error wrapping
// ErrCorrupt that names the file and offset. Only one Journal at a time
// may hold a directory: Open fails with ErrLocked otherwise. ctx bounds
// the call to Config.Head.
func Open(ctx context.Context, dir string, cfg Config) (*Journal, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("journal: %w", err)
	}
	if err := lockFile(lock); err != nil {
		lock.Close()
		if errors.Is(err, ErrLocked) {
			return nil, fmt.Errorf("%w: %s", ErrLocked, dir)
		}
		return nil, fmt.Errorf("journal: lock %s: %w", dir, err)
	}
	j := &Journal{
		dir: dir, cfg: cfg, log: cfg.Logger, lock: lock,
		kick: make(chan struct{}, 1), quit: make(chan struct{}), stopped: make(chan struct{}),
		progress:  make(chan struct{}),
		chunkSize: int(min(max(cfg.CacheBytes/16, minChunkSize), maxChunkSize)),
	}
	if err := j.load(ctx); err != nil {
		if j.active != nil {
			j.active.Close()
		}
		lock.Close()
		return nil, err
	}
	go j.run()
	return j, nil
}

// load reads the state file and the segments, truncates a torn tail,
// fills the cache with the newest unshipped entries and finds the chain
// head.
func (j *Journal) load(ctx context.Context) error {
	st, _, err := readState(j.dir)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if err := os.Remove(filepath.Join(j.dir, stateTemp)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("journal: %w", err)
	}
	j.acked, j.ackedByte, j.ackHead = st.acked, st.ackedByte, st.head
	j.next, j.nextByte = st.acked+1, st.ackedByte
	j.cacheStart = j.next
	j.written = math.MaxUint64 // every record read is written: the cache may drop any
	firsts, err := listSegments(j.dir)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	var head chainHead
	var lastEnd int // valid size of the last segment
	var tornPath string
	for i, first := range firsts {
		last := i == len(firsts)-1
		path := filepath.Join(j.dir, segName(first))
		if !last && firsts[i+1]-1 <= st.acked {
			// Entirely shipped: left over by a crash between the state
			// file and the removal.
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("journal: %w", err)
			}
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		hfirst, base, ok := parseSegHeader(data)
		if !ok {
			if last && (len(data) < segHeaderSize || allZero(data)) {
				// Created, then cut short by a crash before its header was
				// written: it holds no record.
				j.tornTail(path, 0, int64(len(data)))
				if err := os.Remove(path); err != nil {
					return fmt.Errorf("journal: %w", err)
				}
				continue
			}
			return fmt.Errorf("%w: %s: bad segment header", ErrCorrupt, path)
		}
		if hfirst != first {
			return fmt.Errorf("%w: %s: header names position %d", ErrCorrupt, path, hfirst)
		}
		if n := len(j.segs); n > 0 && (first < j.segs[n-1].next || first > j.segs[n-1].next && first-1 > st.acked) {
			return fmt.Errorf("%w: %s: starts at position %d after a segment ending at %d",
				ErrCorrupt, path, first, j.segs[n-1].next-1)
		}
		res, err := scanRecords(data, first, func(pos uint64, payload []byte, off, size int) error {
			if pos <= st.acked {
				return nil
			}
			e, err := decodeEntry(payload)
			if err != nil {
				return fmt.Errorf("%w: %s: offset %d (position %d): %w", ErrCorrupt, path, off, pos, err)
			}
			if e.Hash != "" {
				head = chainHead{seq: e.Seq, hash: e.Hash, ok: true}
			}
			j.cacheFrame(data[off:off+size], pos, base+uint64(off+size-segHeaderSize))
			j.evictLocked()
			j.stats.Replayed++
			return nil
		})
		if err != nil {
			return err
		}
		if res.bad {
			if !last || res.after >= 0 {
				where := "damaged record"
				if res.after >= 0 {
					where = fmt.Sprintf("damaged record (valid records follow at offset %d)", res.after)
				}
				return fmt.Errorf("%w: %s: offset %d (position %d): %s", ErrCorrupt, path, res.end, res.next, where)
			}
			tornPath = path
			j.tornTail(path, int64(res.end), int64(len(data)-res.end))
		}
		j.segs = append(j.segs, segInfo{first: first, next: res.next, base: base})
		lastEnd = res.end
		j.nextByte = max(j.nextByte, base+uint64(res.end-segHeaderSize))
		j.next = max(j.next, res.next)
	}
	if tornPath != "" {
		if err := truncateFile(tornPath, int64(lastEnd)); err != nil {
			return fmt.Errorf("journal: truncate torn tail: %w", err)
		}
	}
	if n := len(j.segs); n > 0 && j.segs[n-1].next == j.next {
		path := filepath.Join(j.dir, segName(j.segs[n-1].first))
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		j.active, j.activeSize, j.activeNext = j.wrap(f), int64(lastEnd), j.next
	}
	j.written, j.durable, j.fwritten = j.next-1, j.next-1, j.next-1
	j.evictLocked()
	switch {
	case head.ok:
		j.head = head
	case st.head.ok:
		j.head = st.head
	case j.cfg.Head != nil:
		seq, hash, err := j.cfg.Head(ctx)
		if err != nil {
			return fmt.Errorf("journal: chain head: %w", err)
		}
		j.head = chainHead{seq: seq, hash: hash, ok: hash != ""}
	}
	if j.stats.Replayed > 0 || j.stats.TornBytes > 0 {
		j.log.Info("audit journal opened", "dir", j.dir, "entries", j.stats.Replayed, "segments", len(j.segs))
	}
	return nil
}

func (j *Journal) tornTail(path string, off, n int64) {
	j.stats.TornRecords, j.stats.TornBytes = 1, j.stats.TornBytes+n
	j.log.Warn("audit journal: torn tail truncated", "file", path, "offset", off, "bytes", n)
}

func fsyncFile(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func truncateFile(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	err = f.Truncate(size)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (j *Journal) wrap(f *os.File) segmentFile {
	if j.cfg.wrapFile != nil {
		return j.cfg.wrapFile(f)
	}
	return f
}

// encoder is the scratch space of one Append.
type encoder struct {
	frames []byte
	ends   []int
	crcs   []uint32
}

var encoders = sync.Pool{New: func() any { return new(encoder) }}

// Append stages entries after every entry appended before and returns the
// position of the last one; it does no I/O. When the unshipped records
// would exceed Config.MaxBytes it returns an error wrapping audit.ErrFull
// and adds none. After a failed write it returns that error, and
// ErrClosed after Close. The journal keeps its own copy of the entries.
func (j *Journal) Append(entries ...audit.Entry) (uint64, error) {
	enc := encoders.Get().(*encoder)
	defer encoders.Put(enc)
	if cap(enc.frames) > 4*maxChunkSize {
		enc.frames = nil
	}
	enc.frames, enc.ends, enc.crcs = enc.frames[:0], enc.ends[:0], enc.crcs[:0]
	for i := range entries {
		start := len(enc.frames)
		enc.frames = append(enc.frames, make([]byte, frameHeaderSize)...)
		enc.frames = encodeEntry(enc.frames, &entries[i])
		payload := enc.frames[start+frameHeaderSize:]
		if len(payload) > maxPayload {
			return 0, fmt.Errorf("journal: entry %d encodes to %d bytes, more than %d", i, len(payload), maxPayload)
		}
		binary.LittleEndian.PutUint32(enc.frames[start:], uint32(len(payload)))
		enc.crcs = append(enc.crcs, crc32.Checksum(payload, castagnoli))
		enc.ends = append(enc.ends, len(enc.frames))
	}
	j.mu.Lock()
	switch {
	case j.closed:
		j.mu.Unlock()
		return 0, ErrClosed
	case j.err != nil:
		err := j.err
		j.mu.Unlock()
		return 0, err
	case int64(j.nextByte-j.ackedByte)+int64(len(enc.frames)) > j.cfg.MaxBytes:
		j.stats.Refused += uint64(len(entries))
		held := j.nextByte - j.ackedByte
		j.mu.Unlock()
		return 0, fmt.Errorf("%w: journal holds %d bytes of unshipped entries, %d more would exceed %d",
			audit.ErrFull, held, len(enc.frames), j.cfg.MaxBytes)
	}
	wake := j.written+1 == j.next
	start := 0
	for i, end := range enc.ends {
		frame := enc.frames[start:end]
		binary.LittleEndian.PutUint64(frame[8:16], j.next)
		sealFrame(frame, enc.crcs[i])
		j.nextByte += uint64(len(frame))
		j.cacheFrame(frame, j.next, j.nextByte)
		if h := entries[i].Hash; h != "" {
			j.head = chainHead{seq: entries[i].Seq, hash: h, ok: true}
		}
		j.next++
		start = end
	}
	j.stats.Appended += uint64(len(entries))
	pos := j.next - 1
	j.mu.Unlock()
	if wake && len(entries) > 0 {
		select {
		case j.kick <- struct{}{}:
		default:
		}
	}
	return pos, nil
}

// broadcastLocked wakes the Sync calls waiting for progress.
func (j *Journal) broadcastLocked() {
	close(j.progress)
	j.progress = make(chan struct{})
}

// Sync returns once every entry up to pos is written to its segment file,
// and also fsynced under FsyncBatch. A pos beyond the last entry appended
// means the last one. It returns the journal's error when a write failed,
// ErrClosed when the journal was closed before the entries were written,
// or ctx's error when ctx ends first.
func (j *Journal) Sync(ctx context.Context, pos uint64) error {
	for {
		j.mu.Lock()
		pos = min(pos, j.next-1)
		switch {
		case pos <= j.durable:
			j.mu.Unlock()
			return nil
		case j.err != nil:
			err := j.err
			j.mu.Unlock()
			return err
		case j.done:
			j.mu.Unlock()
			return ErrClosed
		}
		ch := j.progress
		j.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// run is the flusher: it writes what is staged, one write per round,
// fsyncs according to the policy, and finishes when Close asks.
func (j *Journal) run() {
	defer close(j.stopped)
	var tick <-chan time.Time
	if j.cfg.Fsync == FsyncInterval {
		t := time.NewTicker(j.cfg.SyncInterval)
		defer t.Stop()
		tick = t.C
	}
	quitting := false
	for {
		// Let the producers that are ready append first: a larger group.
		runtime.Gosched()
		j.mu.Lock()
		ranges := j.stagedLocked()
		last := j.next - 1
		endByte := j.nextByte
		j.mu.Unlock()
		if len(ranges) > 0 {
			buf := j.join(ranges)
			err := j.write(buf, j.fwritten+1, last, endByte-uint64(len(buf)))
			j.mu.Lock()
			if err != nil && j.err == nil {
				j.fail(err)
			}
			if err == nil {
				j.written = last
				if j.cfg.Fsync != FsyncBatch {
					j.durable = last
				}
				j.segs[len(j.segs)-1].next = last + 1
				j.evictLocked()
			}
			j.broadcastLocked()
			j.mu.Unlock()
			select {
			case <-tick: // due while the writes go on
				if err == nil && j.dirty {
					j.fsync(j.fwritten)
				}
			default:
			}
			continue
		}
		if quitting {
			j.finish()
			return
		}
		select {
		case <-j.kick:
		case <-tick:
			if j.dirty {
				j.fsync(j.fwritten)
			}
		case <-j.quit:
			quitting = true
		}
	}
}

// stagedLocked returns the records not written yet, as parts of chunks
// (in j.ranges); nothing after a failed write. Only the flusher calls it,
// with j.mu held. The chunks stay put until the records are written.
func (j *Journal) stagedLocked() [][]byte {
	j.ranges = j.ranges[:0]
	if j.written+1 == j.next || j.err != nil {
		return nil
	}
	first := j.written + 1
	i := sort.Search(len(j.chunks), func(i int) bool { return j.chunks[i].next() > first })
	for k, c := range j.chunks[i:] {
		from := 0
		if k == 0 {
			from = c.offset(first)
		}
		j.ranges = append(j.ranges, c.buf[from:len(c.buf):len(c.buf)])
	}
	return j.ranges
}

// join returns the ranges in one slice, to be written at once: the only
// one, or a copy in the flusher's scratch buffer.
func (j *Journal) join(ranges [][]byte) []byte {
	if len(ranges) == 1 {
		return ranges[0]
	}
	if cap(j.scratch) > 4*maxChunkSize {
		j.scratch = nil
	}
	j.scratch = j.scratch[:0]
	for _, r := range ranges {
		j.scratch = append(j.scratch, r...)
	}
	return j.scratch
}

// fail records the first write error (with j.mu held).
func (j *Journal) fail(err error) {
	j.err = fmt.Errorf("journal: write %s: %w", j.dir, err)
	j.log.Error("audit journal failed; entries not yet written stay in memory only", "dir", j.dir, "err", err)
}

// write writes the frames of positions first...last, whose first record
// starts at journal byte offset base, to the active segment (starting a
// new one when needed), and fsyncs under FsyncBatch.
func (j *Journal) write(buf []byte, first, last, base uint64) error {
	if j.active == nil || j.activeNext != first || j.activeSize >= j.cfg.SegmentBytes {
		if err := j.rotate(first, base); err != nil {
			return err
		}
	}
	_, err := j.active.Write(buf)
	j.activeSize += int64(len(buf))
	j.fwritten, j.activeNext, j.dirty = last, last+1, true
	j.mu.Lock()
	j.stats.Writes++
	j.mu.Unlock()
	if err != nil {
		return err
	}
	if j.cfg.Fsync == FsyncBatch {
		return j.fsync(last)
	}
	return nil
}

// fsync fsyncs the active segment, which holds every position up to last.
func (j *Journal) fsync(last uint64) error {
	err := j.active.Sync()
	j.mu.Lock()
	defer j.mu.Unlock()
	j.stats.Fsyncs++
	if err != nil {
		if j.err == nil {
			j.fail(err)
			j.broadcastLocked()
		}
		return err
	}
	j.dirty = false
	if j.cfg.Fsync == FsyncBatch && last > j.durable {
		j.durable = last
	}
	return nil
}

// rotate closes the active segment (fsynced unless the policy is
// FsyncNever) and starts a new one whose first record is at position
// first and journal byte offset base.
func (j *Journal) rotate(first, base uint64) error {
	if j.active != nil {
		if j.dirty && j.cfg.Fsync != FsyncNever {
			if err := j.fsync(j.fwritten); err != nil {
				return err
			}
		}
		if j.dirty {
			j.unsynced = append(j.unsynced, filepath.Join(j.dir, segName(j.segs[len(j.segs)-1].first)))
			j.dirty = false
		}
		if err := j.active.Close(); err != nil {
			return err
		}
		j.active = nil
	}
	path := filepath.Join(j.dir, segName(first))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	j.active, j.activeSize, j.activeNext = j.wrap(f), 0, first
	if _, err := j.active.Write(appendSegHeader(nil, first, base)); err != nil {
		return err
	}
	j.activeSize = segHeaderSize
	if j.cfg.Fsync != FsyncNever {
		if err := j.active.Sync(); err != nil {
			return err
		}
		if err := syncDir(j.dir); err != nil {
			return err
		}
	}
	j.mu.Lock()
	j.segs = append(j.segs, segInfo{first: first, next: first, base: base})
	j.mu.Unlock()
	return nil
}

// finish makes everything written durable, whatever the policy, and
// closes the active segment.
func (j *Journal) finish() {
	var err error
	if j.active != nil {
		if j.dirty {
			err = j.active.Sync()
		}
		if cerr := j.active.Close(); err == nil {
			err = cerr
		}
	}
	if j.cfg.Fsync == FsyncNever && err == nil {
		// Segments closed without fsync, and the names of new ones.
		for _, path := range j.unsynced {
			if err = fsyncFile(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				break
			}
			err = nil
		}
		if err == nil {
			err = syncDir(j.dir)
		}
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if err != nil && j.err == nil {
		j.fail(err)
	}
	if j.err == nil {
		j.durable = j.written
	}
	j.done = true
	j.broadcastLocked()
}

// Peek returns copies of up to limit of the oldest unshipped entries,
// oldest first, decoded from memory when they are recent, else read back
// from the files. The entries are the caller's: they share no memory with
// the journal.
func (j *Journal) Peek(limit int) ([]audit.Entry, error) {
	j.readMu.Lock()
	defer j.readMu.Unlock()
	j.mu.Lock()
	from := j.acked + 1
	n := int(min(uint64(max(limit, 0)), j.next-from))
	j.mu.Unlock()
	if n <= 0 {
		return nil, nil
	}
	out := make([]audit.Entry, 0, n)
	for len(out) < n {
		p := from + uint64(len(out))
		j.mu.Lock()
		if p >= j.cacheStart {
			// Copy the records, then decode them without holding j.mu.
			end := p + uint64(n-len(out))
			buf := j.peekBuf[:0]
			for q := p; q < end; {
				c := j.chunkOf(q)
				r := min(c.next(), end)
				buf = append(buf, c.buf[c.offset(q):c.ends[r-1-c.first]]...)
				q = r
			}
			j.mu.Unlock()
			for len(buf) > 0 {
				size := frameHeaderSize + int(binary.LittleEndian.Uint32(buf))
				e, err := decodeEntry(buf[frameHeaderSize:size])
				if err != nil {
					return nil, fmt.Errorf("journal: position %d: %w", from+uint64(len(out)), err)
				}
				out = append(out, e)
				buf = buf[size:]
			}
			if cap(buf) <= 4*maxChunkSize {
				j.peekBuf = buf[:0]
			}
			break
		}
		cs := j.cacheStart
		j.mu.Unlock()
		items, err := j.readBack(p, int(min(uint64(n-len(out)), cs-p)))
		if err != nil {
			return nil, err
		}
		for _, it := range items {
			e := it.e // kept by the read-ahead until acknowledged
			if e.RequestData != nil {
				e.RequestData = slices.Clone(e.RequestData)
			}
			if e.UserRoles != nil {
				e.UserRoles = slices.Clone(e.UserRoles)
			}
			out = append(out, e)
		}
	}
	return out, nil
}

// Ack durably records that the n oldest unshipped entries are shipped (a
// state file replaced atomically and fsynced, whatever the policy, so ack
// in batches), so that they are not replayed, then deletes the segment
// files that hold only shipped entries. n beyond Len means all.
func (j *Journal) Ack(n int) error {
	j.readMu.Lock()
	defer j.readMu.Unlock()
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return ErrClosed
	}
	n = int(min(uint64(max(n, 0)), j.next-1-j.acked))
	if n == 0 {
		j.mu.Unlock()
		return nil
	}
	from, to := j.acked+1, j.acked+uint64(n)
	for {
		// The entries are needed for their offsets and chain links: from
		// the cache, or the read-ahead for those before it (usually Peek
		// just read them). The cache may drop entries meanwhile.
		need := min(to+1, j.cacheStart)
		if from >= need || j.raStart <= from && j.raStart+uint64(len(j.ra)) >= need {
			break
		}
		j.mu.Unlock()
		if _, err := j.readBack(from, int(need-from)); err != nil {
			return err
		}
		j.mu.Lock()
	}
	st := state{acked: to, head: j.ackHead}
	if to >= j.cacheStart {
		c := j.chunkOf(to)
		st.ackedByte = c.base + uint64(c.ends[to-c.first])
	} else {
		st.ackedByte = j.ra[to-j.raStart].end
	}
	for p := to; p >= from; p-- {
		var h chainHead
		if p >= j.cacheStart {
			h.seq, h.hash, h.ok = chainOf(j.chunkOf(p).frame(p)[frameHeaderSize:])
		} else if e := &j.ra[p-j.raStart].e; e.Hash != "" {
			h = chainHead{seq: e.Seq, hash: e.Hash, ok: true}
		}
		if h.ok {
			st.head = h
			break
		}
	}
	j.mu.Unlock()
	if err := writeState(j.dir, st); err != nil {
		return fmt.Errorf("journal: ack: %w", err)
	}
	j.mu.Lock()
	j.acked, j.ackedByte, j.ackHead = st.acked, st.ackedByte, st.head
	j.stats.Acked += uint64(n)
	j.evictLocked()
	var gone []segInfo
	for len(j.segs) > 1 && j.segs[0].next-1 <= j.acked {
		gone = append(gone, j.segs[0])
		j.segs = j.segs[1:]
	}
	j.mu.Unlock()
	if k := int(min(uint64(len(j.ra)), to+1-min(to+1, j.raStart))); k > 0 {
		clear(j.ra[:k])
		j.ra, j.raStart = j.ra[k:], j.raStart+uint64(k)
	}
	for _, s := range gone {
		if j.rd.f != nil && j.rd.seg.first == s.first {
			j.rd.close()
		}
		if err := os.Remove(filepath.Join(j.dir, segName(s.first))); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("journal: ack: %w", err)
		}
	}
	return nil
}

// Len returns the number of unshipped entries, staged or written.
func (j *Journal) Len() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	return int(j.next - 1 - j.acked)
}

// ChainHead returns the sequence number and hash of the last chained entry
// (one with a Hash) appended to the journal, in this run or a previous
// one; or, when the journal never held one, what Config.Head returned at
// Open; or 0 and "".
func (j *Journal) ChainHead() (seq int64, hash string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.head.seq, j.head.hash
}

// Stats returns the journal's counters.
func (j *Journal) Stats() Stats {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := j.stats
	s.Entries = int(j.next - 1 - j.acked)
	s.Bytes = int64(j.nextByte - j.ackedByte)
	s.Staged = int(j.next - 1 - j.written)
	s.Segments = len(j.segs)
	s.Cached = int(j.next - j.cacheStart)
	return s
}

// Close writes everything staged, fsyncs it (whatever the policy) and
// releases the files. Unshipped entries stay for the next Open. It returns
// the journal's error when a write failed; a second Close returns nil.
func (j *Journal) Close() error {
	j.mu.Lock()
	if j.closed {
		j.mu.Unlock()
		return nil
	}
	j.closed = true
	j.mu.Unlock()
	close(j.quit)
	<-j.stopped
	j.readMu.Lock()
	j.rd.close()
	j.ra = nil
	j.readMu.Unlock()
	err := j.lock.Close() // releases the flock
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.err != nil {
		return j.err
	}
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

var _ audit.ChainBuffer = (*Journal)(nil)

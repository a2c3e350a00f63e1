package audit

import (
	"context"
	"errors"
	"slices"
	"sync"
)

// ErrFull is returned (wrapped) by Buffer.Append when the entries do not
// fit; none of them was added.
var ErrFull = errors.New("audit: buffer full")

// Buffer holds the entries that Log accepted and the sink has not stored
// yet, oldest first. A Logger appends from any goroutine and reads from its
// single writer: Peek the oldest entries, write them, Ack them. Entries stay
// in the buffer until acknowledged, so a failed write is simply retried.
//
// The Logger's default Buffer is in memory (NewMemoryBuffer); the journal
// (package audit/journal) keeps them in files, so that they survive a
// restart or a crash. Implementations are safe for concurrent use.
type Buffer interface {
	// Append adds entries after every entry appended before and returns the
	// position of the last one (positions number the entries appended over
	// the buffer's life, from 1). When they do not fit it returns an error
	// wrapping ErrFull and adds none. Append does not wait for I/O: a
	// durable buffer stages the entries and writes them in the background.
	Append(entries ...Entry) (pos uint64, err error)
	// Sync returns once every entry up to pos is durable (at once for a
	// buffer in memory), or with an error when the buffer cannot make them
	// so or ctx ends. An error means "not known to be durable", not lost:
	// the entries are still held and may yet be stored.
	Sync(ctx context.Context, pos uint64) error
	// Peek returns up to max of the oldest entries without removing them,
	// in a slice of the caller's (the Logger chains them in place and keeps
	// them until they are stored).
	Peek(max int) ([]Entry, error)
	// Ack removes the n oldest entries: the sink stored them (or dropped
	// them for good).
	Ack(n int) error
	// Len returns the number of entries held.
	Len() int
	// Close releases the buffer; a durable buffer first makes every staged
	// entry durable. Entries still held stay there for the next process.
	Close() error
}

// ChainBuffer is a Buffer that keeps the head of the hash chain: the
// sequence number and hash of the last chained entry it holds or held (a
// journal reads it from its files, or from the sink when it has never held
// one). A Logger with Chain set links entries as it appends them to a
// ChainBuffer, so that they are chained before they are stored anywhere.
type ChainBuffer interface {
	Buffer
	ChainHead() (seq int64, hash string)
}

// MemoryBuffer is a Buffer in memory, bounded in entries.
type MemoryBuffer struct {
	mu    sync.Mutex
	q     []Entry // q[head:] are held
	head  int
	limit int
	pos   uint64
}

// NewMemoryBuffer returns a buffer holding at most limit entries (at least
// 1).
func NewMemoryBuffer(limit int) *MemoryBuffer {
	return &MemoryBuffer{limit: max(limit, 1)}
}

// Append adds entries, or none when they do not fit.
func (b *MemoryBuffer) Append(entries ...Entry) (uint64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.q)-b.head+len(entries) > b.limit {
		return 0, ErrFull
	}
	if b.head > 0 && len(b.q) == cap(b.q) && b.head >= len(b.q)/2 {
		// Reuse the space of acknowledged entries before growing (when
		// they are at least half of it, so that copying stays linear).
		n := copy(b.q, b.q[b.head:])
		clear(b.q[n:])
		b.q, b.head = b.q[:n], 0
	}
	b.q = append(b.q, entries...)
	b.pos += uint64(len(entries))
	return b.pos, nil
}

// Sync returns nil: entries in memory are as durable as they get.
func (b *MemoryBuffer) Sync(context.Context, uint64) error { return nil }

// Peek returns a copy of up to max of the oldest entries.
func (b *MemoryBuffer) Peek(max int) ([]Entry, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := min(max, len(b.q)-b.head)
	if n <= 0 {
		return nil, nil
	}
	return slices.Clone(b.q[b.head : b.head+n]), nil
}

// Ack removes the n oldest entries.
func (b *MemoryBuffer) Ack(n int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	n = min(n, len(b.q)-b.head)
	clear(b.q[b.head : b.head+n])
	b.head += n
	if b.head == len(b.q) {
		b.q, b.head = b.q[:0], 0
	}
	return nil
}

// Len returns the number of entries held.
func (b *MemoryBuffer) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.q) - b.head
}

// Close does nothing; entries still held are lost with the process.
func (b *MemoryBuffer) Close() error { return nil }

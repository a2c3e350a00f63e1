package ws

import (
	"sync"
	"sync/atomic"
	"time"
)

// maxBatch bounds the bytes gathered for one write: a batch that would grow
// past it is written first.
const maxBatch = 64 << 10

// writeBatch lets a connection's writer hand several WebSocket messages to
// the kernel in one write system call without changing the protocol: each
// message is still its own frame, written by gorilla/websocket, but while
// the writer gathers, the frames gorilla writes to the network connection
// are appended to a buffer, which flush writes at once.
//
// Only the goroutine that holds the send queue's writing state gathers and
// flushes. Other goroutines may write control frames at any time (gorilla
// serializes its own writes, not this buffer's flush): while a batch is
// gathered their frames join it in order, and while a batch is being
// written they wait for it, so that no frame overtakes a frame gorilla
// wrote before it. The deadline they set reaches the network connection at
// once, which bounds their wait as it bounds a write of their own.
type writeBatch struct {
	on       atomic.Bool // gathering
	mu       sync.Mutex  // buf, deadline; held while a batch or a frame is written
	buf      []byte
	deadline time.Time
}

// Write appends p to the batch being gathered, or writes it.
func (w *closeWatch) Write(p []byte) (int, error) {
	b := &w.out
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.on.Load() {
		return w.Conn.Write(p)
	}
	if len(b.buf) > 0 && len(b.buf)+len(p) > maxBatch {
		if err := w.writeBuf(); err != nil {
			return 0, err
		}
	}
	if len(p) > maxBatch {
		_ = w.Conn.SetWriteDeadline(b.deadline)
		return w.Conn.Write(p)
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// SetWriteDeadline sets the deadline of the batch being gathered, or of
// the network connection.
func (w *closeWatch) SetWriteDeadline(t time.Time) error {
	b := &w.out
	if b.on.Load() {
		b.mu.Lock()
		if b.on.Load() {
			b.deadline = t
			b.mu.Unlock()
			return nil
		}
		b.mu.Unlock()
	}
	return w.Conn.SetWriteDeadline(t)
}

// gather starts gathering the frames written into buf (reset to length 0;
// nil allocates on first use), to be written by flush before deadline.
func (w *closeWatch) gather(buf []byte, deadline time.Time) {
	b := &w.out
	b.mu.Lock()
	b.buf, b.deadline = buf[:0], deadline
	b.on.Store(true)
	b.mu.Unlock()
}

// flush writes the frames gathered since gather in one write and stops
// gathering. It returns the buffer for reuse.
func (w *closeWatch) flush() ([]byte, error) {
	b := &w.out
	b.mu.Lock()
	defer b.mu.Unlock()
	b.on.Store(false)
	err := w.writeBuf()
	buf := b.buf
	b.buf = nil
	return buf, err
}

// writeBuf writes the gathered frames; b.mu is held.
func (w *closeWatch) writeBuf() error {
	b := &w.out
	if len(b.buf) == 0 {
		return nil
	}
	_ = w.Conn.SetWriteDeadline(b.deadline)
	_, err := w.Conn.Write(b.buf)
	b.buf = b.buf[:0]
	return err
}

// buffered reports whether more data messages were received whole than the
// reader consumed: the reader's next read returns without waiting.
func (w *closeWatch) buffered(consumed uint64) bool { return w.messages > consumed }

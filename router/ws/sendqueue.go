package ws

import "sync"

// closeReq is a decision to close a connection.
type closeReq struct {
	code   int
	reason string
	flush  bool // write the queued messages before the close frame
	frame  bool // send a close frame (false: already sent, or the peer is gone)
}

// pushResult is what sendQueue.push did with a message.
type pushResult uint8

const (
	pushed       pushResult = iota // queued: the writer must be woken
	pushClosing                    // dropped: the connection is closing
	pushOverflow                   // dropped: the queue is full (slow consumer)
)

// sendQueue is a connection's outgoing side: the messages waiting to be
// written, their byte count, whether a goroutine is writing, and the
// decision to close. It enforces that one goroutine writes at a time: a
// goroutine writes only after acquire or take granted it the writing
// state, and gives it back with release or done. It knows no socket.
//
// The byte count covers the messages queued and the ones being written, so
// that a consumer that stops reading fills the queue even while its last
// write blocks.
type sendQueue struct {
	mu      sync.Mutex
	msgs    [][]byte
	bytes   int  // bytes queued and being written
	writing bool // a goroutine holds the writing state
	closing *closeReq
}

// push queues msg. A message that does not fit in limit bytes with what is
// queued or being written is refused (pushOverflow); a single message larger
// than limit is accepted into an empty queue.
func (q *sendQueue) push(msg []byte, limit int) pushResult {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closing != nil {
		return pushClosing
	}
	if q.bytes > 0 && q.bytes+len(msg) > limit {
		return pushOverflow
	}
	q.msgs = append(q.msgs, msg)
	q.bytes += len(msg)
	return pushed
}

// acquire grants the calling goroutine the writing state for a message of
// n bytes that it writes itself, when the connection is not closing,
// nobody writes and, with idle, nothing is queued (a message written ahead
// of queued ones would overtake them). The caller writes, then calls
// release(n).
func (q *sendQueue) acquire(n int, idle bool) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closing != nil || q.writing || idle && len(q.msgs) > 0 {
		return false
	}
	q.writing = true
	q.bytes += n
	return true
}

// release gives back the writing state acquired for n bytes and reports
// whether the writer has work: queued messages or a close.
func (q *sendQueue) release(n int) (more bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.writing = false
	q.bytes -= n
	return len(q.msgs) > 0 || q.closing != nil
}

// take hands the writer up to max queued messages (all of them when max
// <= 0) together with the writing state, to be given back with done. A
// close that does not flush drops the queue first. busy is true when
// another goroutine writes (it wakes the writer when done); msgs is empty
// when there is nothing to write. cr is the close requested, if any.
func (q *sendQueue) take(max int) (msgs [][]byte, cr *closeReq, busy bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	cr = q.closing
	if cr != nil && !cr.flush {
		q.bytes -= queuedBytes(q.msgs)
		clear(q.msgs)
		q.msgs = nil
	}
	if q.writing {
		return nil, cr, true
	}
	if len(q.msgs) == 0 {
		q.msgs = nil // an idle connection keeps no backing array
		return nil, cr, false
	}
	n := len(q.msgs)
	if max > 0 && n > max {
		n = max
	}
	msgs = q.msgs[:n:n]
	q.msgs = q.msgs[n:]
	q.writing = true
	return msgs, cr, false
}

// done gives back the writing state granted by take for msgs and reports
// whether the writer has work: queued messages or a close.
func (q *sendQueue) done(msgs [][]byte) (more bool) {
	n := queuedBytes(msgs)
	q.mu.Lock()
	defer q.mu.Unlock()
	q.writing = false
	q.bytes -= n
	return len(q.msgs) > 0 || q.closing != nil
}

// close records cr as the connection's close unless one is recorded; it
// reports whether cr was recorded.
func (q *sendQueue) close(cr closeReq) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closing != nil {
		return false
	}
	q.closing = &cr
	return true
}

// force records cr in place of a close that would flush the queue (the
// queue can no longer be written), or as the first close. It reports
// whether cr is now the connection's close.
func (q *sendQueue) force(cr closeReq) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closing != nil && !q.closing.flush {
		return false
	}
	q.closing = &cr
	return true
}

// closeCode returns the code of the recorded close, ok false when none is.
func (q *sendQueue) closeCode() (code int, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closing == nil {
		return 0, false
	}
	return q.closing.code, true
}

func (q *sendQueue) isClosing() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closing != nil
}

// drop forgets the queued messages (the connection is finished).
func (q *sendQueue) drop() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.bytes -= queuedBytes(q.msgs)
	q.msgs = nil
}

// queuedBytes returns the total length of msgs.
func queuedBytes(msgs [][]byte) int {
	n := 0
	for _, m := range msgs {
		n += len(m)
	}
	return n
}

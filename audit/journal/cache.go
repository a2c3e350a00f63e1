package journal

import (
	"encoding/binary"
	"sort"
)

// Bounds of the capacity of a chunk: records are staged and cached in
// chunks of CacheBytes/16 within these bounds (or of one record, when
// larger).
const (
	minChunkSize = 4 << 10
	maxChunkSize = 1 << 20
)

// chunk holds the encoded records (frames) of consecutive positions, as
// they are written to the segment files. Its buffer never grows beyond
// its capacity, so that the flusher writes from it while Append adds
// records after the part being written. A chunk holds no pointers: the
// garbage collector does not scan the records.
type chunk struct {
	first uint64   // position of its first record
	base  uint64   // journal byte offset of buf[0]
	buf   []byte   // the frames
	ends  []uint32 // end of each frame in buf
}

// next returns the position after its last record.
func (c *chunk) next() uint64 { return c.first + uint64(len(c.ends)) }

// offset returns where the record at pos starts in buf.
func (c *chunk) offset(pos uint64) int {
	if i := pos - c.first; i > 0 {
		return int(c.ends[i-1])
	}
	return 0
}

// frame returns the record at pos.
func (c *chunk) frame(pos uint64) []byte {
	return c.buf[c.offset(pos):c.ends[pos-c.first]]
}

// cacheFrame adds the record frame, at position pos and ending at journal
// byte offset end, to the last chunk, or to a new one when it does not
// fit (with j.mu held).
func (j *Journal) cacheFrame(frame []byte, pos, end uint64) {
	var c *chunk
	if n := len(j.chunks); n > 0 && cap(j.chunks[n-1].buf)-len(j.chunks[n-1].buf) >= len(frame) {
		c = j.chunks[n-1]
	} else {
		if n := len(j.free); n > 0 && len(frame) <= j.chunkSize {
			c, j.free = j.free[n-1], j.free[:n-1]
		} else {
			c = &chunk{buf: make([]byte, 0, max(j.chunkSize, len(frame)))}
		}
		c.first, c.base = pos, end-uint64(len(frame))
		if len(j.chunks) == 0 {
			j.cacheStart = pos
		}
		j.chunks = append(j.chunks, c)
		j.cacheBytes += int64(cap(c.buf))
	}
	c.buf = append(c.buf, frame...)
	c.ends = append(c.ends, uint32(len(c.buf)))
}

// chunkOf returns the chunk holding position pos, which is cached.
func (j *Journal) chunkOf(pos uint64) *chunk {
	i := sort.Search(len(j.chunks), func(i int) bool { return j.chunks[i].next() > pos })
	return j.chunks[i]
}

// evictLocked drops the oldest chunks whose records are all written and
// either acknowledged or beyond the cache's bound (with j.mu held).
func (j *Journal) evictLocked() {
	for len(j.chunks) > 0 {
		c := j.chunks[0]
		last := c.next() - 1
		if last > j.written || last > j.acked && (j.cacheBytes <= j.cfg.CacheBytes || len(j.chunks) == 1) {
			break
		}
		j.chunks[0] = nil
		j.chunks = j.chunks[1:]
		j.cacheBytes -= int64(cap(c.buf))
		if cap(c.buf) == j.chunkSize && len(j.free) < 4 {
			c.buf, c.ends = c.buf[:0], c.ends[:0]
			j.free = append(j.free, c)
		}
	}
	if len(j.chunks) > 0 {
		j.cacheStart = j.chunks[0].first
	} else {
		j.cacheStart = j.next
	}
}

// chainOf returns the Seq and Hash of the entry encoded in payload,
// without decoding the rest; ok is false when it has no Hash.
func chainOf(payload []byte) (seq int64, hash string, ok bool) {
	p := payload[2+16:]
	for range 2 { // Timestamp, ResponseStatus
		_, n := binary.Varint(p)
		p = p[n:]
	}
	p = p[8:] // DurationMS
	seq, n := binary.Varint(p)
	p = p[n:]
	_, n = binary.Uvarint(p) // len(RequestData)
	p = p[n:]
	for range 10 { // up to PrevHash
		l, n := binary.Uvarint(p)
		p = p[n+int(l):]
	}
	l, n := binary.Uvarint(p)
	hash = string(p[n : n+int(l)])
	return seq, hash, hash != ""
}

package audit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"math"
	"strconv"
)

// ChainSink is implemented by sinks that store the hash chain: ChainHead
// returns the sequence number and hash of the last chained entry written (0
// and "" when there is none), so that a Logger continues the chain where the
// previous process left it. The head should be stored apart from the
// entries and updated atomically with each chained write, so that deleting
// the last entries neither moves it nor goes unnoticed (auditbun.Sink does so). A
// chained table has a single writing Logger.
type ChainSink interface {
	Sink
	ChainHead(ctx context.Context) (seq int64, hash string, err error)
}

// chainer assigns sequence numbers and hashes.
type chainer struct {
	key  []byte
	seq  int64
	head string
}

// link places e after the current head and makes it the head.
func (c *chainer) link(e *Entry) {
	c.seq++
	e.Seq, e.PrevHash = c.seq, c.head
	e.Hash = ChainHash(*e, c.key)
	c.head = e.Hash
}

// ChainHash returns the hex SHA-256 (HMAC-SHA-256 when key is not empty)
// of e's sequence number, previous hash and content. e.Hash is not part of
// it.
func ChainHash(e Entry, key []byte) string {
	var h hash.Hash
	if len(key) > 0 {
		h = hmac.New(sha256.New, key)
	} else {
		h = sha256.New()
	}
	var num [8]byte
	field := func(b []byte) {
		binary.BigEndian.PutUint64(num[:], uint64(len(b)))
		h.Write(num[:])
		h.Write(b)
	}
	str := func(s string) { field([]byte(s)) }
	integer := func(n int64) {
		binary.BigEndian.PutUint64(num[:], uint64(n))
		h.Write(num[:])
	}
	integer(e.Seq)
	str(e.PrevHash)
	field(e.ID[:])
	integer(e.Timestamp.UnixMicro())
	str(e.UserID)
	str(e.Username)
	roles, _ := json.Marshal(e.UserRoles)
	if e.UserRoles == nil {
		roles = nil
	}
	field(roles)
	str(e.ActionType)
	str(e.Resource)
	str(string(e.Outcome))
	str(e.IPAddress)
	str(e.UserAgent)
	str(e.RequestID)
	field(e.RequestData)
	if e.ResponseStatus != nil {
		str(strconv.Itoa(*e.ResponseStatus))
	} else {
		str("null")
	}
	str(e.ErrorMessage)
	integer(int64(math.Float64bits(e.DurationMS)))
	return hex.EncodeToString(h.Sum(nil))
}

// Break describes the first broken link of a hash chain.
type Break struct {
	// Seq is the sequence number expected at the break.
	Seq int64
	// ID is the entry found there (zero when an entry is missing at the end).
	ID string
	// Reason says what does not match.
	Reason string
}

// Error describes the break.
func (b *Break) Error() string {
	return fmt.Sprintf("audit: hash chain broken at seq %d (entry %s): %s", b.Seq, b.ID, b.Reason)
}

// ChainVerifier checks entries of a hash chain one by one, in sequence
// order. The zero value (with Key set as needed) expects the chain to start
// at sequence 1 with an empty previous hash; set AfterSeq and AfterHash to
// start after a known link (for example after older entries were pruned).
type ChainVerifier struct {
	// Key is the HMAC key the Logger was configured with, if any.
	Key []byte
	// AfterSeq and AfterHash are the link before the first entry checked.
	AfterSeq  int64
	AfterHash string

	started bool
	seq     int64
	hash    string
	broken  *Break
	checked int
}

// Check verifies the next entry. It returns the first break found; after a
// break it keeps returning it.
func (v *ChainVerifier) Check(e Entry) *Break {
	if v.broken != nil {
		return v.broken
	}
	if !v.started {
		v.started, v.seq, v.hash = true, v.AfterSeq, v.AfterHash
	}
	want := v.seq + 1
	switch {
	case e.Seq != want:
		v.broken = &Break{Seq: want, ID: e.ID.String(), Reason: fmt.Sprintf("found seq %d", e.Seq)}
	case e.PrevHash != v.hash:
		v.broken = &Break{Seq: want, ID: e.ID.String(), Reason: "previous hash does not match the previous entry"}
	case ChainHash(e, v.Key) != e.Hash:
		v.broken = &Break{Seq: want, ID: e.ID.String(), Reason: "content does not match its hash"}
	default:
		v.seq, v.hash = e.Seq, e.Hash
		v.checked++
		return nil
	}
	return v.broken
}

// Head returns the last verified link and how many entries were verified.
func (v *ChainVerifier) Head() (seq int64, hash string, checked int) {
	if !v.started {
		return v.AfterSeq, v.AfterHash, 0
	}
	return v.seq, v.hash, v.checked
}

package journal

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math"
	"time"

	"github.com/pkgroute/pkgroute/audit"
)

// Record frame: a fixed header followed by the payload.
//
//	offset size
//	0      4    payload length n (uint32, little endian)
//	4      4    CRC-32C (Castagnoli) of payload, then bytes 0-3, then bytes 8-15
//	8      8    position of the record (uint64, little endian)
//	16     n    payload: one encoded audit.Entry (encodeEntry)
const (
	frameHeaderSize = 16
	// maxPayload bounds the payload length a reader accepts, so that a
	// damaged length never makes it allocate or scan gigabytes.
	maxPayload = 64 << 20
	// minPayload is the smallest payload encodeEntry produces.
	minPayload = 1 + 1 + 16 + 1 + 1 + 8 + 1 + 1 + 11 + 1
)

// payloadVersion is the first byte of every payload; a reader refuses
// versions it does not know.
const payloadVersion = 1

// Flags of a version 1 payload.
const (
	flagStatus      = 1 << 0 // ResponseStatus is not nil
	flagRoles       = 1 << 1 // UserRoles is not nil
	flagRequestData = 1 << 2 // RequestData is not nil
	flagsKnown      = flagStatus | flagRoles | flagRequestData
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errBadPayload is returned by decodeEntry for a payload it cannot read.
var errBadPayload = errors.New("malformed entry")

// encodeEntry appends the version 1 payload of e to dst:
//
//	version      byte (1)
//	flags        byte (flagStatus, flagRoles, flagRequestData)
//	ID           16 bytes
//	Timestamp    varint, microseconds since the Unix epoch (UTC)
//	Status       varint (0 when nil; see flagStatus)
//	DurationMS   8 bytes, IEEE 754 bits, little endian
//	Seq          varint
//	len(RequestData) uvarint
//	11 strings   uvarint length + bytes each: UserID, Username, ActionType,
//	             Resource, Outcome, IPAddress, UserAgent, RequestID,
//	             ErrorMessage, PrevHash, Hash
//	UserRoles    uvarint count, then uvarint length + bytes each
//	RequestData  the bytes, up to the end of the payload
//
// The strings sit together so that a reader converts them to one string.
func encodeEntry(dst []byte, e *audit.Entry) []byte {
	var flags byte
	if e.ResponseStatus != nil {
		flags |= flagStatus
	}
	if e.UserRoles != nil {
		flags |= flagRoles
	}
	if e.RequestData != nil {
		flags |= flagRequestData
	}
	dst = append(dst, payloadVersion, flags)
	dst = append(dst, e.ID[:]...)
	dst = binary.AppendVarint(dst, e.Timestamp.UnixMicro())
	var status int64
	if e.ResponseStatus != nil {
		status = int64(*e.ResponseStatus)
	}
	dst = binary.AppendVarint(dst, status)
	dst = binary.LittleEndian.AppendUint64(dst, math.Float64bits(e.DurationMS))
	dst = binary.AppendVarint(dst, e.Seq)
	dst = binary.AppendUvarint(dst, uint64(len(e.RequestData)))
	for _, s := range [...]string{e.UserID, e.Username, e.ActionType, e.Resource, string(e.Outcome),
		e.IPAddress, e.UserAgent, e.RequestID, e.ErrorMessage, e.PrevHash, e.Hash} {
		dst = appendString(dst, s)
	}
	dst = binary.AppendUvarint(dst, uint64(len(e.UserRoles)))
	for _, r := range e.UserRoles {
		dst = appendString(dst, r)
	}
	return append(dst, e.RequestData...)
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// decodeEntry reads a payload written by encodeEntry. The entry shares no
// memory with p. Timestamps come back in UTC.
func decodeEntry(p []byte) (audit.Entry, error) {
	var e audit.Entry
	if len(p) < 2 || p[0] != payloadVersion || p[1]&^flagsKnown != 0 {
		return e, errBadPayload
	}
	flags := p[1]
	p = p[2:]
	if len(p) < 16 {
		return e, errBadPayload
	}
	copy(e.ID[:], p[:16])
	p = p[16:]
	ts, n := binary.Varint(p)
	if n <= 0 || ts < minMicros || ts > maxMicros {
		return e, errBadPayload
	}
	p = p[n:]
	e.Timestamp = time.UnixMicro(ts).UTC()
	status, n := binary.Varint(p)
	if n <= 0 || status < math.MinInt32 || status > math.MaxInt32 {
		return e, errBadPayload
	}
	p = p[n:]
	if flags&flagStatus != 0 {
		e.ResponseStatus = audit.Status(int(status))
	} else if status != 0 {
		return e, errBadPayload
	}
	if len(p) < 8 {
		return e, errBadPayload
	}
	e.DurationMS = math.Float64frombits(binary.LittleEndian.Uint64(p))
	p = p[8:]
	if e.Seq, n = binary.Varint(p); n <= 0 {
		return e, errBadPayload
	}
	p = p[n:]
	rdLen, n := binary.Uvarint(p)
	if n <= 0 || rdLen > uint64(len(p)-n) {
		return e, errBadPayload
	}
	p = p[n:]
	if rdLen > 0 && flags&flagRequestData == 0 {
		return e, errBadPayload
	}
	rd := p[len(p)-int(rdLen):]
	// One string holds every text field; the fields are slices of it.
	s := string(p[:len(p)-int(rdLen)])
	var fields [11]string
	for i := range fields {
		var ok bool
		if fields[i], s, ok = cutString(s); !ok {
			return audit.Entry{}, errBadPayload
		}
	}
	e.UserID, e.Username, e.ActionType, e.Resource, e.Outcome = fields[0], fields[1], fields[2], fields[3], audit.Outcome(fields[4])
	e.IPAddress, e.UserAgent, e.RequestID, e.ErrorMessage, e.PrevHash, e.Hash = fields[5], fields[6], fields[7], fields[8], fields[9], fields[10]
	count, n := uvarintString(s)
	if n <= 0 || count > uint64(len(s)-n) { // each role takes at least one byte
		return audit.Entry{}, errBadPayload
	}
	s = s[n:]
	if count > 0 && flags&flagRoles == 0 {
		return audit.Entry{}, errBadPayload
	}
	if flags&flagRoles != 0 {
		e.UserRoles = make([]string, count)
		for i := range e.UserRoles {
			var ok bool
			if e.UserRoles[i], s, ok = cutString(s); !ok {
				return audit.Entry{}, errBadPayload
			}
		}
	}
	if s != "" {
		return audit.Entry{}, errBadPayload
	}
	if flags&flagRequestData != 0 {
		e.RequestData = append(make([]byte, 0, len(rd)), rd...)
	}
	return e, nil
}

// The timestamps encodeEntry can write: time.Time's range in microseconds
// is wider than int64, so UnixMicro saturates; anything outside the range
// of years 1-9999 is damage.
var (
	minMicros = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro()
	maxMicros = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC).UnixMicro()
)

// cutString reads a length-prefixed string at the start of s and returns
// it and the rest; ok is false when s does not start with one.
func cutString(s string) (field, rest string, ok bool) {
	l, n := uvarintString(s)
	if n <= 0 || l > uint64(len(s)-n) {
		return "", "", false
	}
	s = s[n:]
	return s[:l], s[l:], true
}

// uvarintString is binary.Uvarint for a string.
func uvarintString(s string) (uint64, int) {
	var x uint64
	var shift uint
	for i := 0; i < len(s) && i < binary.MaxVarintLen64; i++ {
		b := s[i]
		if b < 0x80 {
			if i == binary.MaxVarintLen64-1 && b > 1 {
				return 0, -(i + 1)
			}
			return x | uint64(b)<<shift, i + 1
		}
		x |= uint64(b&0x7f) << shift
		shift += 7
	}
	return 0, 0
}

// appendFrame appends a record frame holding payload at position pos.
func appendFrame(dst []byte, pos uint64, payload []byte) []byte {
	start := len(dst)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(payload)))
	dst = append(dst, 0, 0, 0, 0)
	dst = binary.LittleEndian.AppendUint64(dst, pos)
	dst = append(dst, payload...)
	sealFrame(dst[start:], crc32.Checksum(payload, castagnoli))
	return dst
}

// sealFrame writes the checksum into frame (header and payload in place),
// given the CRC-32C of its payload.
func sealFrame(frame []byte, payloadCRC uint32) {
	c := crc32.Update(payloadCRC, castagnoli, frame[0:4])
	c = crc32.Update(c, castagnoli, frame[8:16])
	binary.LittleEndian.PutUint32(frame[4:8], c)
}

// parseFrame reads the frame at the start of b. It returns the payload,
// the position and the frame's size, or ok false when b does not start
// with a complete frame whose checksum matches.
func parseFrame(b []byte) (payload []byte, pos uint64, size int, ok bool) {
	if len(b) < frameHeaderSize {
		return nil, 0, 0, false
	}
	n := binary.LittleEndian.Uint32(b[0:4])
	if n < minPayload || n > maxPayload || uint64(n) > uint64(len(b)-frameHeaderSize) {
		return nil, 0, 0, false
	}
	size = frameHeaderSize + int(n)
	payload = b[frameHeaderSize:size]
	c := crc32.Checksum(payload, castagnoli)
	c = crc32.Update(c, castagnoli, b[0:4])
	c = crc32.Update(c, castagnoli, b[8:16])
	if c != binary.LittleEndian.Uint32(b[4:8]) {
		return nil, 0, 0, false
	}
	return payload, binary.LittleEndian.Uint64(b[8:16]), size, true
}

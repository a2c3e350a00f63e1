package journal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Names of the files in a journal directory.
const (
	lockName   = "LOCK"
	stateName  = "ack"
	stateTemp  = "ack.tmp"
	segSuffix  = ".seg"
	segNameLen = 20 // decimal digits of the first position
)

// Segment header: 32 bytes at the start of every segment file.
//
//	offset size
//	0      4    magic "PRJL"
//	4      4    format version (uint32, little endian): 1
//	8      8    position of the segment's first record
//	16     8    journal byte offset of the first record (for accounting)
//	24     4    CRC-32C of bytes 0-23
//	28     4    zero
const (
	segHeaderSize = 32
	segMagic      = "PRJL"
	segVersion    = 1
)

func segName(first uint64) string {
	return fmt.Sprintf("%0*d%s", segNameLen, first, segSuffix)
}

// parseSegName returns the first position named by a segment file name.
func parseSegName(name string) (uint64, bool) {
	digits, ok := strings.CutSuffix(name, segSuffix)
	if !ok || len(digits) != segNameLen {
		return 0, false
	}
	first, err := strconv.ParseUint(digits, 10, 64)
	return first, err == nil && first > 0
}

func appendSegHeader(dst []byte, first, base uint64) []byte {
	start := len(dst)
	dst = append(dst, segMagic...)
	dst = binary.LittleEndian.AppendUint32(dst, segVersion)
	dst = binary.LittleEndian.AppendUint64(dst, first)
	dst = binary.LittleEndian.AppendUint64(dst, base)
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(dst[start:], castagnoli))
	return binary.LittleEndian.AppendUint32(dst, 0)
}

func parseSegHeader(b []byte) (first, base uint64, ok bool) {
	if len(b) < segHeaderSize || string(b[0:4]) != segMagic ||
		binary.LittleEndian.Uint32(b[4:8]) != segVersion ||
		crc32.Checksum(b[0:24], castagnoli) != binary.LittleEndian.Uint32(b[24:28]) {
		return 0, 0, false
	}
	return binary.LittleEndian.Uint64(b[8:16]), binary.LittleEndian.Uint64(b[16:24]), true
}

// listSegments returns the first positions of the segment files in dir,
// in order.
func listSegments(dir string) ([]uint64, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var firsts []uint64
	for _, de := range des {
		if first, ok := parseSegName(de.Name()); ok && de.Type().IsRegular() {
			firsts = append(firsts, first)
		}
	}
	slices.Sort(firsts)
	return firsts, nil
}

// scanResult is what scanRecords found in a segment's bytes.
type scanResult struct {
	next  uint64 // position after the last valid record
	end   int    // offset after the last valid record
	bad   bool   // a damaged record starts at end
	after int    // when bad: offset of a valid later record, or -1
}

// scanRecords walks the records of a segment (data includes the header)
// whose first record is at position first, calling fn for each. It stops
// at the first record that is damaged (incomplete, checksum mismatch, or
// out of sequence) and then looks for a valid record further on, which
// tells damage in the middle (an error) from a torn tail (truncated).
func scanRecords(data []byte, first uint64, fn func(pos uint64, payload []byte, off, size int) error) (scanResult, error) {
	off, pos := segHeaderSize, first
	for off < len(data) {
		payload, p, size, ok := parseFrame(data[off:])
		if !ok || p != pos {
			return scanResult{next: pos, end: off, bad: true, after: findFrame(data, off+1, pos)}, nil
		}
		if err := fn(pos, payload, off, size); err != nil {
			return scanResult{}, err
		}
		off += size
		pos++
	}
	return scanResult{next: pos, end: off}, nil
}

// findFrame returns the offset of the first valid frame at or after from
// whose position is at least minPos, or -1.
func findFrame(data []byte, from int, minPos uint64) int {
	for o := from; o+frameHeaderSize+minPayload <= len(data); o++ {
		if _, p, _, ok := parseFrame(data[o:]); ok && p >= minPos {
			return o
		}
	}
	return -1
}

func allZero(b []byte) bool {
	return len(bytes.Trim(b, "\x00")) == 0
}

// state is the content of the state file: how far the journal has been
// shipped, and the head of the hash chain among the shipped entries.
type state struct {
	acked     uint64 // position of the last acknowledged entry
	ackedByte uint64 // journal byte offset after it
	head      chainHead
}

// chainHead is a link of the hash chain; ok is false when there is none.
type chainHead struct {
	seq  int64
	hash string
	ok   bool
}

// State file (stateName), replaced atomically (write a temporary file,
// fsync, rename, fsync the directory):
//
//	offset size
//	0      4    magic "PRJA"
//	4      4    format version (uint32, little endian): 1
//	8      8    acknowledged position
//	16     8    journal byte offset after the acknowledged entry
//	24     8    chain head seq (int64)
//	32     1    1 when a chain head follows, 0 otherwise
//	33     ...  uvarint length + bytes of the chain head hash
//	...    4    CRC-32C of everything before
const (
	stateMagic   = "PRJA"
	stateVersion = 1
)

func encodeState(s state) []byte {
	b := append([]byte(nil), stateMagic...)
	b = binary.LittleEndian.AppendUint32(b, stateVersion)
	b = binary.LittleEndian.AppendUint64(b, s.acked)
	b = binary.LittleEndian.AppendUint64(b, s.ackedByte)
	b = binary.LittleEndian.AppendUint64(b, uint64(s.head.seq))
	var ok byte
	if s.head.ok {
		ok = 1
	}
	b = append(b, ok)
	b = appendString(b, s.head.hash)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

var errBadState = errors.New("malformed state file")

func decodeState(b []byte) (state, error) {
	if len(b) < 38 || string(b[0:4]) != stateMagic || binary.LittleEndian.Uint32(b[4:8]) != stateVersion ||
		crc32.Checksum(b[:len(b)-4], castagnoli) != binary.LittleEndian.Uint32(b[len(b)-4:]) || b[32] > 1 {
		return state{}, errBadState
	}
	s := state{
		acked:     binary.LittleEndian.Uint64(b[8:16]),
		ackedByte: binary.LittleEndian.Uint64(b[16:24]),
		head:      chainHead{seq: int64(binary.LittleEndian.Uint64(b[24:32])), ok: b[32] == 1},
	}
	hash, rest, ok := cutString(string(b[33 : len(b)-4]))
	if !ok || rest != "" {
		return state{}, errBadState
	}
	s.head.hash = hash
	return s, nil
}

// readState reads the state file of dir; a missing file is the state of
// a journal that has never been acknowledged.
func readState(dir string) (state, bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateName))
	if errors.Is(err, os.ErrNotExist) {
		return state{}, false, nil
	}
	if err != nil {
		return state{}, false, err
	}
	s, err := decodeState(b)
	if err != nil {
		return state{}, false, fmt.Errorf("%s: %w", filepath.Join(dir, stateName), ErrCorrupt)
	}
	return s, true, nil
}

// writeState replaces the state file of dir atomically and durably.
func writeState(dir string, s state) error {
	tmp := filepath.Join(dir, stateTemp)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(encodeState(s)); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, stateName)); err != nil {
		return err
	}
	return syncDir(dir)
}

// syncDir makes the entries of dir (created, renamed files) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// segmentFile is the part of *os.File the flusher writes segments with.
type segmentFile interface {
	io.Writer
	Sync() error
	Close() error
}

package journal

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
)

// readBack returns the entries at positions from...from+n-1, all
// written, from the read-ahead or the files (with j.readMu held).
func (j *Journal) readBack(from uint64, n int) ([]item, error) {
	if len(j.ra) == 0 || from < j.raStart || from > j.raStart+uint64(len(j.ra)) {
		clear(j.ra)
		j.ra, j.raStart = j.ra[:0], from
	} else if k := int(from - j.raStart); k > 0 {
		clear(j.ra[:k])
		j.ra, j.raStart = j.ra[k:], from
	}
	for len(j.ra) < n {
		it, err := j.rd.read(j, j.raStart+uint64(len(j.ra)))
		if err != nil {
			return nil, err
		}
		j.ra = append(j.ra, it)
	}
	return j.ra[:n], nil
}

// reader reads records sequentially from the segment files.
type reader struct {
	f     *os.File
	br    *bufio.Reader
	seg   segInfo
	path  string
	off   int64  // offset of the next record in f
	pos   uint64 // its position
	frame []byte
}

// read returns the written entry at position pos.
func (r *reader) read(j *Journal, pos uint64) (item, error) {
	if r.f == nil || pos < r.pos || pos >= r.seg.next {
		if err := r.seek(j, pos); err != nil {
			return item{}, err
		}
	}
	for {
		it, err := r.readOne()
		if err != nil {
			return item{}, err
		}
		if r.pos-1 == pos {
			j.mu.Lock()
			j.stats.DiskReads++
			j.mu.Unlock()
			return it, nil
		}
	}
}

// seek opens the segment holding position pos at its first record.
func (r *reader) seek(j *Journal, pos uint64) error {
	j.mu.Lock()
	i, found := slices.BinarySearchFunc(j.segs, pos, func(s segInfo, p uint64) int {
		switch {
		case p < s.first:
			return 1
		case p >= s.next:
			return -1
		}
		return 0
	})
	var seg segInfo
	if found {
		seg = j.segs[i]
	}
	j.mu.Unlock()
	if !found {
		return fmt.Errorf("%w: position %d is in no segment of %s", ErrCorrupt, pos, j.dir)
	}
	if r.f != nil && r.seg.first == seg.first && r.pos <= pos {
		r.seg = seg // it grew
		return nil
	}
	r.close()
	r.path = filepath.Join(j.dir, segName(seg.first))
	f, err := os.Open(r.path)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if _, err := f.Seek(segHeaderSize, io.SeekStart); err != nil {
		f.Close()
		return fmt.Errorf("journal: %w", err)
	}
	if r.br == nil {
		r.br = bufio.NewReaderSize(f, 256<<10)
	} else {
		r.br.Reset(f)
	}
	r.f, r.seg, r.off, r.pos = f, seg, segHeaderSize, seg.first
	return nil
}

// readOne reads the record at r.off.
func (r *reader) readOne() (item, error) {
	bad := func(err error) (item, error) {
		return item{}, fmt.Errorf("%w: %s: offset %d (position %d): %w", ErrCorrupt, r.path, r.off, r.pos, err)
	}
	r.frame = slices.Grow(r.frame[:0], frameHeaderSize)[:frameHeaderSize]
	if _, err := io.ReadFull(r.br, r.frame); err != nil {
		return bad(err)
	}
	n := binary.LittleEndian.Uint32(r.frame)
	if n < minPayload || n > maxPayload {
		return bad(errors.New("bad record length"))
	}
	r.frame = slices.Grow(r.frame, int(n))[:frameHeaderSize+int(n)]
	if _, err := io.ReadFull(r.br, r.frame[frameHeaderSize:]); err != nil {
		return bad(err)
	}
	payload, pos, size, ok := parseFrame(r.frame)
	if !ok || pos != r.pos {
		return bad(errors.New("checksum or position mismatch"))
	}
	e, err := decodeEntry(payload)
	if err != nil {
		return bad(err)
	}
	r.off += int64(size)
	r.pos++
	return item{e: e, end: r.seg.base + uint64(r.off-segHeaderSize), size: uint32(size)}, nil
}

func (r *reader) close() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
}

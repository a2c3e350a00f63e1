package journal

import (
	"bytes"
	"testing"

	"github.com/pkgroute/pkgroute/audit"
)

// FuzzDecodeEntry: the payload decoder never panics, and what it accepts
// encodes back to a payload that decodes to the same entry.
func FuzzDecodeEntry(f *testing.F) {
	e := codecEntry()
	f.Add(encodeEntry(nil, &e))
	f.Add(encodeEntry(nil, &audit.Entry{}))
	f.Fuzz(func(t *testing.T, p []byte) {
		e, err := decodeEntry(p)
		if err != nil {
			return
		}
		b1 := encodeEntry(nil, &e)
		e2, err := decodeEntry(b1)
		if err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		if b2 := encodeEntry(nil, &e2); !bytes.Equal(b1, b2) {
			t.Fatalf("round trip changed the entry:\n%x\n%x", b1, b2)
		}
		if _, _, ok := chainOf(b1); ok != (e.Hash != "") {
			t.Fatalf("chainOf disagrees with decodeEntry")
		}
	})
}

// FuzzScanSegment: reading a segment's bytes (records, damage detection,
// the search for a valid record after damage) never panics, and every
// record it accepts decodes or fails cleanly.
func FuzzScanSegment(f *testing.F) {
	e := codecEntry()
	good := appendSegHeader(nil, 1, 0)
	good = appendFrame(good, 1, encodeEntry(nil, &e))
	good = appendFrame(good, 2, encodeEntry(nil, &audit.Entry{}))
	f.Add(good)
	f.Add(good[:len(good)-3])
	f.Add(append(good[:len(good):len(good)], make([]byte, 40)...))
	f.Fuzz(func(t *testing.T, data []byte) {
		first, _, ok := parseSegHeader(data)
		if !ok {
			first = 1
			data = append(appendSegHeader(nil, 1, 0), data...)
		}
		res, _ := scanRecords(data, first, func(pos uint64, payload []byte, off, size int) error {
			if e, err := decodeEntry(payload); err == nil {
				chainOf(payload)
				_ = e
			}
			return nil
		})
		if res.end > len(data) || res.after >= len(data) {
			t.Fatalf("scan went past the data: %+v", res)
		}
	})
}

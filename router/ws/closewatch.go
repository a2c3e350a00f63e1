package ws

import (
	"bufio"
	"encoding/binary"
	"net"
	"net/http"
	"sync/atomic"
)

// watchHijack passes w to the upgrader so that the hijacked connection is
// a *closeWatch: gorilla/websocket reports a close frame with a one-byte
// payload as a close without status (1005), which RFC 6455 §5.5.1 does not
// allow (a close payload is empty or starts with a two-byte code), so the
// frames are followed on the bytes read to tell them apart.
type watchHijack struct {
	http.ResponseWriter
	nc *closeWatch
}

// Hijack hijacks the connection of the wrapped writer (through its Unwrap
// chain) and wraps it.
func (h *watchHijack) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	nc, brw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.nc = &closeWatch{Conn: nc}
	return h.nc, brw, nil
}

// Unwrap returns the wrapped writer.
func (h *watchHijack) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// closeWatch follows the client's frame headers (payloads are skipped by
// their length) and records whether its close frame had a one-byte
// payload. It stops at the first close frame. Reads are sequential (the
// connection's reader), the result is read once the reader saw the close.
type closeWatch struct {
	net.Conn
	hdr     [14]byte // the frame header being read
	hn      int      // bytes of hdr read
	remain  uint64   // payload bytes left to skip
	done    bool
	oneByte atomic.Bool // the close frame's payload was one byte

	final    bool   // the frame being skipped ends a data message
	messages uint64 // data messages received whole (see buffered)

	out writeBatch // frames gathered for one write (see gather)
}

// Read follows the frames in the bytes read.
func (w *closeWatch) Read(p []byte) (int, error) {
	n, err := w.Conn.Read(p)
	if n > 0 && !w.done {
		w.follow(p[:n])
	}
	return n, err
}

func (w *closeWatch) follow(p []byte) {
	for len(p) > 0 && !w.done {
		if w.remain > 0 {
			k := uint64(len(p))
			if k > w.remain {
				k = w.remain
			}
			p, w.remain = p[k:], w.remain-k
			if w.remain == 0 && w.final {
				w.messages++
			}
			continue
		}
		w.hdr[w.hn] = p[0]
		w.hn++
		p = p[1:]
		if w.hn < 2 {
			continue
		}
		size := 2
		switch w.hdr[1] & 0x7f {
		case 126:
			size += 2
		case 127:
			size += 8
		}
		if w.hdr[1]&0x80 != 0 {
			size += 4 // the mask key
		}
		if w.hn < size {
			continue
		}
		length := uint64(w.hdr[1] & 0x7f)
		switch length {
		case 126:
			length = uint64(binary.BigEndian.Uint16(w.hdr[2:4]))
		case 127:
			length = binary.BigEndian.Uint64(w.hdr[2:10])
		}
		if w.hdr[0]&0x0f == 0x8 { // close
			w.oneByte.Store(length == 1)
			w.done = true
			return
		}
		w.hn, w.remain = 0, length
		w.final = w.hdr[0]&0x80 != 0 && w.hdr[0]&0x08 == 0 // FIN, not a control frame
		if length == 0 && w.final {
			w.messages++
		}
	}
}

// oneByteClose reports whether the peer's close frame had a one-byte
// payload; nc is the connection the upgrader hijacked.
func oneByteClose(nc net.Conn) bool {
	w, ok := nc.(*closeWatch)
	return ok && w.oneByte.Load()
}

package middleware

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"sync/atomic"
)

// framing follows the HTTP/1.x requests read from one connection, as
// net/http frames them (request line and header up to the empty line, then
// a chunked body, a Content-Length body or none), and records when the
// connection must be closed after the response to the request being read:
// its framing is ambiguous (Content-Length together with
// Transfer-Encoding, or Transfer-Encoding in an HTTP/1.0 request, RFC 9112
// §6.1 and §6.3), or framing cannot follow it any more (what it does not
// understand, net/http refuses or frames the same way; when it is unsure,
// closing costs a new connection, while guessing could let bytes of a body
// be served as a request). net/http drops the Content-Length of such a
// request before any handler runs, so only the bytes tell.
//
// Requests are counted from 1 on both sides: framing counts request lines,
// closeAmbiguous counts the requests handlers get. net/http serves the
// requests of a connection one after the other, and answers a request that
// never reaches a handler only by closing the connection, so both counts
// name the same request.
//
// Reads on a connection are sequential (net/http's reader, later a
// hijacker's), so feed needs no lock; the atomics are shared with handlers.
type framing struct {
	closeAt atomic.Int64 // the request after which to close; 0: none
	served  atomic.Int64 // requests that reached closeAmbiguous

	// The chunk sizes declared so far by the request being read, and the
	// body limit BodyLimit set for a request: a declared size past it
	// wakes a read waiting for the chunk's data (wake), so that the
	// answer is 413 at once instead of after the read timeout.
	chunked    atomic.Int64  // the request whose chunks declared is about
	declared   atomic.Uint64 // saturating
	limitReq   atomic.Int64
	limitBytes atomic.Int64
	wake       func()
	chunkTotal uint64

	done     bool  // stopped following the connection
	requests int64 // request lines read
	state    int
	line     lineBuf
	remain   uint64 // body or chunk bytes left
	excess   int64  // chunked overhead, as net/http counts it
	req      requestHead
}

// requestHead is what framing keeps of the header being read.
type requestHead struct {
	proto10   bool // HTTP/1.0
	clSeen    bool
	clValue   [lineHeadCap]byte
	clLen     int
	teCount   int
	teChunked bool
	lastKey   int // headerOther, headerCL or headerTE: the key a continuation line continues
}

const (
	stateRequestLine = iota
	stateHeader
	stateBody       // remain bytes of a Content-Length body
	stateChunkSize  // a chunk-size line
	stateChunkData  // remain bytes of chunk data
	stateChunkCR    // the CR after chunk data
	stateChunkLF    // the LF after chunk data
	stateTrailer    // trailer lines up to the empty line
	headerOther     = 0
	headerCL        = 1
	headerTE        = 2
	maxChunkLine    = 4096 // net/http's maxLineLength for chunk-size lines
	maxChunkExcess  = 16 << 10
	lineHeadCap     = 64 // bytes of a line kept: enough for the keys and values framing reads
	lineTailCap     = 16 // bytes kept of a line's end: the request line's protocol
	maxFramedHeader = 8 << 20
)

// lineBuf keeps the head and the tail of the line being read, and its
// length, without holding long lines.
type lineBuf struct {
	head    [lineHeadCap]byte
	tail    [lineTailCap]byte
	n       int // bytes of the line so far, the LF excluded
	cr      int // CRs in the line
	headerN int // bytes of the current header section so far
}

func (l *lineBuf) add(p []byte) {
	if l.n < lineHeadCap {
		copy(l.head[l.n:], p)
	}
	if len(p) >= lineTailCap {
		copy(l.tail[:], p[len(p)-lineTailCap:])
	} else {
		copy(l.tail[:], l.tail[len(p):])
		copy(l.tail[lineTailCap-len(p):], p)
	}
	l.n += len(p)
	l.cr += bytes.Count(p, []byte{'\r'})
	l.headerN += len(p)
}

// bytes returns the line without a final CR, when it fits in head.
func (l *lineBuf) bytes() ([]byte, bool) {
	if l.n > lineHeadCap {
		return nil, false
	}
	b := l.head[:l.n]
	return bytes.TrimSuffix(b, []byte("\r")), true
}

// end returns the last bytes of the line, without a final CR.
func (l *lineBuf) end() []byte {
	k := min(l.n, lineTailCap)
	return bytes.TrimSuffix(l.tail[lineTailCap-k:], []byte("\r"))
}

// feed follows the bytes p read from the connection.
func (f *framing) feed(p []byte) {
	for len(p) > 0 && !f.done {
		switch f.state {
		case stateBody, stateChunkData:
			k := uint64(len(p))
			if k > f.remain {
				k = f.remain
			}
			p = p[k:]
			f.remain -= k
			if f.remain == 0 {
				if f.state == stateBody {
					f.startRequest()
				} else {
					f.state = stateChunkCR
				}
			}
		case stateChunkCR, stateChunkLF:
			want := byte('\r')
			if f.state == stateChunkLF {
				want = '\n'
			}
			if p[0] != want {
				f.stop() // net/http refuses it: malformed chunked encoding
				return
			}
			p = p[1:]
			if f.state == stateChunkCR {
				f.state = stateChunkLF
			} else {
				f.state = stateChunkSize
			}
		default: // line states
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				f.line.add(p)
				p = nil
			} else {
				f.line.add(p[:i])
				p = p[i+1:]
				f.endLine()
				f.line.n, f.line.cr = 0, 0
			}
			if !f.done && f.line.headerN > maxFramedHeader {
				f.stop()
			}
			if !f.done && f.state == stateChunkSize && f.line.n > maxChunkLine {
				f.stop()
			}
		}
	}
}

// stop gives up following the connection; it is closed after the response
// to the request being read.
func (f *framing) stop() {
	f.closeAt.CompareAndSwap(0, max(f.requests, 1))
	f.done = true
}

// startRequest expects the next request line.
func (f *framing) startRequest() {
	f.state, f.remain, f.excess, f.req, f.chunkTotal = stateRequestLine, 0, 0, requestHead{}, 0
	f.line = lineBuf{}
}

// endLine handles a complete line (its LF consumed).
func (f *framing) endLine() {
	switch f.state {
	case stateRequestLine:
		if f.line.n == 0 || (f.line.n == 1 && f.line.head[0] == '\r') {
			f.line.headerN = 0
			return // empty lines before a request line: net/http skips or refuses them
		}
		f.requests++
		switch end := f.line.end(); {
		case bytes.HasSuffix(end, []byte(" HTTP/1.1")):
		case bytes.HasSuffix(end, []byte(" HTTP/1.0")):
			f.req.proto10 = true
		default:
			f.stop() // net/http refuses other versions and closes
			return
		}
		f.state = stateHeader
	case stateHeader:
		f.headerLine()
	case stateChunkSize:
		f.chunkSizeLine()
	case stateTrailer:
		if f.line.n == 0 || (f.line.n == 1 && f.line.head[0] == '\r') {
			f.startRequest()
		} else if f.line.head[0] == ' ' || f.line.head[0] == '\t' {
			return // a continuation of a trailer
		}
	}
}

// headerLine handles one line of a request header.
func (f *framing) headerLine() {
	line, short := f.line.bytes()
	if short && len(line) == 0 {
		f.endHeader()
		return
	}
	if f.line.head[0] == ' ' || f.line.head[0] == '\t' {
		// An obsolete line folding continues the previous field's value.
		if f.req.lastKey != headerOther {
			f.stop()
		}
		return
	}
	f.req.lastKey = headerOther
	key, _, found := bytes.Cut(f.line.head[:min(f.line.n, lineHeadCap)], []byte(":"))
	if !found {
		return // net/http refuses it
	}
	var value []byte
	switch {
	case asciiEqualFold(key, "Content-Length"):
		f.req.lastKey = headerCL
		if !short {
			f.stop()
			return
		}
		_, value, _ = bytes.Cut(line, []byte(":"))
		value = bytes.Trim(value, " \t")
		if f.req.clSeen && !bytes.Equal(value, f.req.clValue[:f.req.clLen]) {
			f.stop() // net/http refuses differing values
			return
		}
		f.req.clSeen = true
		f.req.clLen = copy(f.req.clValue[:], value)
	case asciiEqualFold(key, "Transfer-Encoding"):
		f.req.lastKey = headerTE
		f.req.teCount++
		if !short {
			f.stop()
			return
		}
		_, value, _ = bytes.Cut(line, []byte(":"))
		f.req.teChunked = asciiEqualFold(bytes.Trim(value, " \t"), "chunked")
	}
}

// endHeader starts the body of the request whose header ended.
func (f *framing) endHeader() {
	switch {
	case f.req.teCount > 0 && (f.req.clSeen || f.req.proto10):
		// Both lengths, or a Transfer-Encoding HTTP/1.0 ignores: the
		// framing is ambiguous.
		f.stop()
	case f.req.teCount > 1 || (f.req.teCount == 1 && !f.req.teChunked):
		f.stop() // net/http refuses it and closes
	case f.req.teCount == 1:
		f.state = stateChunkSize
		f.line.headerN = 0
	case f.req.clSeen:
		n, ok := parseLength(f.req.clValue[:f.req.clLen])
		if !ok {
			f.stop()
			return
		}
		if n == 0 {
			f.startRequest()
			return
		}
		f.state, f.remain = stateBody, n
	default:
		f.startRequest()
	}
}

// chunkSizeLine handles a chunk-size line as net/http reads it: CRLF at its
// end and no other CR, under 4 KiB, trailing white space dropped, then what
// follows a ';' (extensions), then 1 to 16 hex digits.
func (f *framing) chunkSizeLine() {
	f.line.headerN = 0
	endsCR := len(f.line.end()) < min(f.line.n, lineTailCap)
	if f.line.cr != 1 || !endsCR || f.line.n-1 >= maxChunkLine {
		f.stop() // net/http refuses it
		return
	}
	var size []byte
	if line, short := f.line.bytes(); short {
		var found bool
		if size, _, found = bytes.Cut(line, []byte(";")); !found {
			size = bytes.TrimRight(line, " \t")
		}
	} else {
		semi := bytes.IndexByte(f.line.head[:], ';')
		if semi < 0 {
			f.stop() // long white space after the size: follow no further
			return
		}
		size = f.line.head[:semi]
	}
	f.excess += int64(f.line.n) + 1 // the line and its CRLF, and the CRLF after the data
	n, ok := parseHex(size)
	if !ok {
		f.stop()
		return
	}
	f.excess -= 16 + 2*int64(min(n, 1<<40))
	f.excess = max(f.excess, 0)
	if f.excess > maxChunkExcess {
		f.stop()
		return
	}
	if n == 0 {
		f.state = stateTrailer
		return
	}
	f.chunkTotal = min(f.chunkTotal+min(n, 1<<62), 1<<62)
	f.declared.Store(f.chunkTotal)
	f.chunked.Store(f.requests)
	if f.limitReq.Load() == f.requests && f.chunkTotal > uint64(f.limitBytes.Load()) && f.wake != nil {
		f.wake()
	}
	f.state, f.remain = stateChunkData, n
}

// limitBody records the body limit of request req (numbered as served
// counts) and reports whether its chunks already declared more.
func (f *framing) limitBody(req, limit int64) bool {
	f.limitBytes.Store(limit)
	f.limitReq.Store(req)
	return f.declaredOver(req, limit)
}

// declaredOver reports whether the chunks of request req declared more
// than limit bytes.
func (f *framing) declaredOver(req, limit int64) bool {
	return f.chunked.Load() == req && f.declared.Load() > uint64(limit)
}

// parseLength parses a Content-Length value as net/http does.
func parseLength(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, n <= 1<<63-1
}

// parseHex parses a chunk size as net/http does: 1 to 16 hex digits.
func parseHex(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | uint64(c)
	}
	return n, true
}

func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c, d := b[i], s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if 'A' <= d && d <= 'Z' {
			d += 'a' - 'A'
		}
		if c != d {
			return false
		}
	}
	return true
}

type framingKey struct{}

// closeAmbiguous asks net/http to close the connection after the response
// when framing says so (see [Listener]).
func closeAmbiguous(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if f, _ := r.Context().Value(framingKey{}).(*framing); f != nil {
			n := f.served.Add(1)
			if at := f.closeAt.Load(); at != 0 && n >= at {
				w.Header().Set("Connection", "close")
			}
		}
		next.ServeHTTP(w, r)
	})
}

// withFraming is NewServer's ConnContext: it makes the framing of a
// connection accepted by [Listener] known to closeAmbiguous.
func withFraming(ctx context.Context, c net.Conn) context.Context {
	if ec, ok := c.(*errConn); ok {
		return context.WithValue(ctx, framingKey{}, &ec.framing)
	}
	return ctx
}

package router

import (
	"bytes"
	"encoding/json"
	"strings"
)

// jsonCursor is a walker's position in one JSON document and the path to
// the value there, shared by the walkers that check data before a handler
// sees it (field names, text a store cannot hold).
type jsonCursor struct {
	b    []byte
	i    int
	path []pathSeg // grows only inside nested values
}

// pathSeg is one step of the walker's path: an object key (raw, as
// written between its quotes) or an array index.
type pathSeg struct {
	key   []byte
	index int
}

// ws skips whitespace.
func (c *jsonCursor) ws() {
	for c.i < len(c.b) {
		switch c.b[c.i] {
		case ' ', '\t', '\n', '\r':
			c.i++
		default:
			return
		}
	}
}

// pointer returns the JSON pointer of the path, followed by last when it
// is not nil.
func (c *jsonCursor) pointer(last *pathSeg) string {
	path := c.path
	if last != nil {
		path = append(path[:len(path):len(path)], *last)
	}
	var b strings.Builder
	for _, p := range path {
		b.WriteByte('/')
		if p.key == nil {
			b.WriteString(itoa(p.index))
		} else {
			b.WriteString(pointerEscaper.Replace(unquoteKey(p.key)))
		}
	}
	return b.String()
}

var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

// unquoteKey returns the value of a key written as raw (between its
// quotes).
func unquoteKey(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw)
	}
	var s string
	_ = json.Unmarshal(append(append([]byte{'"'}, raw...), '"'), &s)
	return s
}

func itoa(n int) string {
	var buf [20]byte
	i := len(buf)
	for {
		i--
		buf[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(buf[i:])
		}
	}
}

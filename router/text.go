package router

import (
	"bytes"
	"unicode/utf8"
)

// Text a store cannot hold, or would silently alter, is refused in data
// before any handler runs: U+0000 (PostgreSQL's text refuses it), lone
// UTF-16 surrogates written as escapes (\ud800 alone: encoding/json turns
// them into U+FFFD) and bytes that are not UTF-8 (encoding/json turns them
// into U+FFFD too; over WebSocket such frames are closed 1007 already), in
// keys and values alike.

// checkText returns the first string of data (strict, well-formed JSON)
// that holds such text, as a detail with its JSON pointer.
func checkText(data []byte) (Detail, bool) {
	if utf8.Valid(data) && !bytes.Contains(data, []byte(`\u`)) {
		return Detail{}, true
	}
	w := textWalker{jsonCursor: jsonCursor{b: data}}
	w.value()
	return w.problem, !w.failed
}

type textWalker struct {
	jsonCursor
	failed  bool
	problem Detail
}

func (w *textWalker) fail(last *pathSeg, msg string) {
	w.failed = true
	w.problem = Detail{Path: w.pointer(last), Msg: msg}
}

func (w *textWalker) value() {
	w.ws()
	if w.i >= len(w.b) || w.failed {
		return
	}
	switch w.b[w.i] {
	case '{':
		w.i++
		for !w.failed {
			w.ws()
			if w.i >= len(w.b) || w.b[w.i] == '}' {
				w.i++
				return
			}
			if w.b[w.i] == ',' {
				w.i++
				w.ws()
			}
			raw, msg := w.str()
			if msg != "" {
				w.fail(&pathSeg{key: bytes.ToValidUTF8(raw, []byte("\uFFFD"))}, "the name "+msg)
				return
			}
			w.ws()
			w.i++ // :
			w.path = append(w.path, pathSeg{key: raw})
			w.value()
			w.path = w.path[:len(w.path)-1]
		}
	case '[':
		w.i++
		for idx := 0; !w.failed; idx++ {
			w.ws()
			if w.i >= len(w.b) || w.b[w.i] == ']' {
				w.i++
				return
			}
			if w.b[w.i] == ',' {
				w.i++
			}
			w.path = append(w.path, pathSeg{index: idx})
			w.value()
			w.path = w.path[:len(w.path)-1]
		}
	case '"':
		if _, msg := w.str(); msg != "" {
			w.fail(nil, msg)
		}
	default:
		for w.i < len(w.b) {
			switch w.b[w.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return
			}
			w.i++
		}
	}
}

// str reads the string at w.i and returns what is between its quotes and,
// when it holds text a store cannot hold, why.
func (w *textWalker) str() (raw []byte, msg string) {
	start := w.i + 1
	w.i++                // "
	highPending := false // the previous escape was a high surrogate
	for w.i < len(w.b) {
		c := w.b[w.i]
		switch {
		case c == '"':
			w.i++
			if highPending {
				msg = firstMsg(msg, "contains a lone UTF-16 surrogate")
			}
			return w.b[start : w.i-1], msg
		case c == '\\' && w.i+1 < len(w.b) && w.b[w.i+1] == 'u' && w.i+6 <= len(w.b):
			r := rune(hexVal(w.b[w.i+2 : w.i+6]))
			w.i += 6
			switch {
			case r == 0:
				msg = firstMsg(msg, "contains U+0000")
			case r >= 0xd800 && r < 0xdc00:
				if highPending {
					msg = firstMsg(msg, "contains a lone UTF-16 surrogate")
				}
				highPending = true
				continue
			case r >= 0xdc00 && r < 0xe000:
				if !highPending {
					msg = firstMsg(msg, "contains a lone UTF-16 surrogate")
				}
			}
			if highPending && !(r >= 0xdc00 && r < 0xe000) {
				msg = firstMsg(msg, "contains a lone UTF-16 surrogate")
			}
			highPending = false
			continue
		case c == '\\':
			w.i += 2
		case c < utf8.RuneSelf:
			w.i++
		default:
			r, n := utf8.DecodeRune(w.b[w.i:])
			if r == utf8.RuneError && n <= 1 {
				msg = firstMsg(msg, "is not valid UTF-8")
			}
			w.i += n
		}
		if highPending {
			msg = firstMsg(msg, "contains a lone UTF-16 surrogate")
			highPending = false
		}
	}
	return w.b[start:], msg
}

func firstMsg(cur, next string) string {
	if cur != "" {
		return cur
	}
	return next
}

func hexVal(h []byte) int {
	v := 0
	for _, c := range h {
		v <<= 4
		switch {
		case c >= '0' && c <= '9':
			v |= int(c - '0')
		case c >= 'a' && c <= 'f':
			v |= int(c-'a') + 10
		case c >= 'A' && c <= 'F':
			v |= int(c-'A') + 10
		}
	}
	return v
}

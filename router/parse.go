package router

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Limits of the strict parser.
const (
	maxDepth         = 128 // nesting of arrays and objects
	maxNumberDigits  = 100 // significant digits, fraction digits included
	maxNumberExpAbs  = 400 // absolute exponent
	keysBeforeAMap   = 16  // keys per object compared linearly before a map is used
	maxEchoedKeySize = 64
)

// envelope is the result of parsing a request envelope.
type envelope struct {
	pkgID    int64
	hasPkgID bool // pkg_id read as an integer
	reqID    uuid.UUID
	sawReqID bool // req_id is present, valid or not
	method   string
	data     []byte // raw data object, nil when absent or null
	err      string // the first problem, "" when the envelope is valid
}

var emptyObject = json.RawMessage("{}")

// parseEnvelope parses b strictly (docs/protocol.md section 1.2). On error it
// still reports pkg_id and req_id when they can be read, wherever they are
// in the object, so that the reply can echo them.
func parseEnvelope(b []byte) envelope {
	env := parseStrict(b)
	if env.err != "" && (!env.hasPkgID || !env.sawReqID) {
		echoFields(b, &env)
	}
	return env
}

// echoFields fills in the pkg_id and req_id that the strict parse of b did
// not reach because an earlier part of b was refused (a duplicate key, an
// overlong number, deep nesting): b is read leniently, and only values that
// are valid on their own are taken.
func echoFields(b []byte, env *envelope) {
	if !utf8.Valid(b) {
		return
	}
	top, ok := topLevel(b)
	if !ok {
		return
	}
	if raw, ok := top["pkg_id"]; ok && !env.hasPkgID {
		if n, ok := parseInt(raw); ok {
			env.pkgID, env.hasPkgID = n, true
		}
	}
	if raw, ok := top["req_id"]; ok && !env.sawReqID {
		env.sawReqID = true
		if len(raw) == 38 && raw[0] == '"' {
			if id, ok := parseUUID(raw[1:37]); ok {
				env.reqID = id
			}
		}
	}
}

// topLevel returns the raw values of the members of the JSON object b
// (the first of duplicates), skipping nested values without limits on
// depth or number size: only the object's own syntax must hold.
func topLevel(b []byte) (map[string][]byte, bool) {
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, false
	}
	out := map[string][]byte{}
	i = skipWS(b, i+1)
	if i < len(b) && b[i] == '}' {
		return out, true
	}
	for i < len(b) {
		end, ok := skipValue(b, i)
		if !ok || b[i] != '"' {
			return nil, false
		}
		var key string
		if json.Unmarshal(b[i:end], &key) != nil {
			return nil, false
		}
		i = skipWS(b, end)
		if i >= len(b) || b[i] != ':' {
			return nil, false
		}
		i = skipWS(b, i+1)
		end, ok = skipValue(b, i)
		if !ok {
			return nil, false
		}
		if _, dup := out[key]; !dup {
			out[key] = b[i:end]
		}
		i = skipWS(b, end)
		if i < len(b) && b[i] == ',' {
			i = skipWS(b, i+1)
			continue
		}
		if i < len(b) && b[i] == '}' {
			return out, true
		}
		return nil, false
	}
	return nil, false
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the end of the JSON value starting at b[i]: strings
// and brackets are matched, scalars run to the next delimiter.
func skipValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		for j := i + 1; j < len(b); j++ {
			switch b[j] {
			case '\\':
				j++
			case '"':
				return j + 1, true
			}
		}
		return 0, false
	case '{', '[':
		depth, inString := 0, false
		for j := i; j < len(b); j++ {
			c := b[j]
			switch {
			case inString && c == '\\':
				j++
			case c == '"':
				inString = !inString
			case inString:
			case c == '{' || c == '[':
				depth++
			case c == '}' || c == ']':
				depth--
				if depth == 0 {
					return j + 1, true
				}
			}
		}
		return 0, false
	}
	j := i
	for j < len(b) && !strings.ContainsRune(",}] \t\n\r", rune(b[j])) {
		j++
	}
	return j, j > i
}

// parseStrict is parseEnvelope without the second look for pkg_id and
// req_id.
func parseStrict(b []byte) envelope {
	var env envelope
	if !utf8.Valid(b) {
		env.err = "request is not valid UTF-8"
		return env
	}
	s := scanners.Get().(*scanner)
	s.reset(b)
	defer scanners.Put(s)
	s.ws()
	if s.peek() != '{' {
		env.err = "request must be a JSON object"
		return env
	}
	s.i++
	var seen [4]bool
	s.ws()
	if s.peek() == '}' {
		s.i++
	} else {
		for {
			s.ws()
			if s.peek() != '"' {
				env.setErr("request is not valid JSON")
				return env
			}
			key, ok := s.str()
			if !ok {
				env.setErr("request is not valid JSON")
				return env
			}
			s.ws()
			if s.peek() != ':' {
				env.setErr("request is not valid JSON")
				return env
			}
			s.i++
			s.ws()
			start := s.i
			if !s.value(1) {
				env.setErr(s.failMsg())
				return env
			}
			raw := b[start:s.i]
			field := -1
			switch string(key) {
			case "pkg_id":
				field = 0
			case "req_id":
				field = 1
			case "method":
				field = 2
			case "data":
				field = 3
			}
			switch {
			case field < 0:
				env.setErr("unknown field " + quoteKey(key))
			case seen[field]:
				env.setErr("duplicate key " + quoteKey(key))
			default:
				seen[field] = true
				env.setField(field, raw)
			}
			s.ws()
			switch s.peek() {
			case ',':
				s.i++
				continue
			case '}':
				s.i++
			default:
				env.setErr("request is not valid JSON")
				return env
			}
			break
		}
	}
	s.ws()
	if s.i != len(b) {
		env.setErr("trailing data after the request object")
		return env
	}
	if !seen[0] {
		env.setErr("pkg_id is required")
	}
	if !seen[1] {
		env.setErr("req_id is required")
	}
	return env
}

func (e *envelope) setErr(msg string) {
	if e.err == "" {
		e.err = msg
	}
}

func (e *envelope) setField(field int, raw []byte) {
	switch field {
	case 0:
		n, ok := parseInt(raw)
		if !ok {
			e.setErr("pkg_id must be an integer")
			return
		}
		e.pkgID, e.hasPkgID = n, true
	case 1:
		e.sawReqID = true
		if len(raw) != 38 || raw[0] != '"' {
			e.setErr("req_id must be a UUID string")
			return
		}
		id, ok := parseUUID(raw[1:37])
		if !ok {
			e.setErr("req_id must be a UUID string")
			return
		}
		e.reqID = id
		if id == uuid.Nil {
			e.setErr("req_id must not be the nil UUID")
		}
	case 2:
		switch {
		case raw[0] == 'n':
		case raw[0] == '"' && bytes.IndexByte(raw, '\\') < 0:
			e.method = string(raw[1 : len(raw)-1])
		case raw[0] == '"':
			var m string
			if err := json.Unmarshal(raw, &m); err != nil {
				e.setErr("method must be a string")
				return
			}
			e.method = m
		default:
			e.setErr("method must be a string")
		}
	case 3:
		switch raw[0] {
		case 'n':
		case '{':
			e.data = raw
		default:
			e.setErr("data must be a JSON object")
		}
	}
}

// parseInt parses a JSON integer that fits in int64.
func parseInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	if neg {
		if n > 1<<63 {
			return 0, false
		}
		return -int64(n), true
	}
	if n > 1<<63-1 {
		return 0, false
	}
	return int64(n), true
}

func quoteKey(k []byte) string {
	if len(k) > maxEchoedKeySize {
		k = k[:maxEchoedKeySize]
	}
	return strconv.Quote(string(k))
}

var scanners = sync.Pool{New: func() any { return new(scanner) }}

func (s *scanner) reset(b []byte) {
	s.b, s.i, s.fail = b, 0, ""
	if s.keys == nil {
		s.keys = make([][]byte, 0, 32)
	}
	clear(s.keys[:cap(s.keys)])
	s.keys = s.keys[:0]
}

// scanner checks JSON strictly: syntax, nesting depth, duplicate keys at any
// depth and number sizes. It does not allocate for ordinary input.
type scanner struct {
	b    []byte
	i    int
	fail string
	keys [][]byte // keys of the objects being scanned, innermost last
}

// checkJSON reports whether b is one strict JSON value (with surrounding
// white space) and, if not, why.
func checkJSON(b []byte) (bool, string) {
	s := scanners.Get().(*scanner)
	s.reset(b)
	defer scanners.Put(s)
	s.ws()
	if !s.value(0) {
		return false, s.failMsg()
	}
	s.ws()
	if s.i != len(b) {
		return false, "trailing data"
	}
	return true, ""
}

func (s *scanner) failMsg() string {
	if s.fail != "" {
		return s.fail
	}
	return "request is not valid JSON"
}

func (s *scanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) value(depth int) bool {
	if depth > maxDepth {
		s.fail = "request is nested too deeply"
		return false
	}
	switch c := s.peek(); {
	case c == '{':
		return s.object(depth + 1)
	case c == '[':
		return s.array(depth + 1)
	case c == '"':
		_, ok := s.str()
		return ok
	case c == '-' || (c >= '0' && c <= '9'):
		return s.number()
	case c == 't':
		return s.lit("true")
	case c == 'f':
		return s.lit("false")
	case c == 'n':
		return s.lit("null")
	}
	return false
}

func (s *scanner) lit(w string) bool {
	if len(s.b)-s.i >= len(w) && string(s.b[s.i:s.i+len(w)]) == w {
		s.i += len(w)
		return true
	}
	return false
}

func (s *scanner) array(depth int) bool {
	s.i++ // [
	s.ws()
	if s.peek() == ']' {
		s.i++
		return true
	}
	for {
		s.ws()
		if !s.value(depth) {
			return false
		}
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
		case ']':
			s.i++
			return true
		default:
			return false
		}
	}
}

func (s *scanner) object(depth int) bool {
	s.i++ // {
	base := len(s.keys)
	defer func() { s.keys = s.keys[:base] }()
	var set map[string]struct{}
	s.ws()
	if s.peek() == '}' {
		s.i++
		return true
	}
	for {
		s.ws()
		if s.peek() != '"' {
			return false
		}
		key, ok := s.str()
		if !ok {
			return false
		}
		if set != nil {
			if _, dup := set[string(key)]; dup {
				s.fail = "duplicate key " + quoteKey(key)
				return false
			}
			set[string(key)] = struct{}{}
		} else {
			for _, k := range s.keys[base:] {
				if bytes.Equal(k, key) {
					s.fail = "duplicate key " + quoteKey(key)
					return false
				}
			}
			s.keys = append(s.keys, key)
			if len(s.keys)-base > keysBeforeAMap {
				set = make(map[string]struct{}, 2*keysBeforeAMap)
				for _, k := range s.keys[base:] {
					set[string(k)] = struct{}{}
				}
			}
		}
		s.ws()
		if s.peek() != ':' {
			return false
		}
		s.i++
		s.ws()
		if !s.value(depth) {
			return false
		}
		s.ws()
		switch s.peek() {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

// str scans a string and returns its decoded content (a sub-slice of the
// input when it has no escapes).
func (s *scanner) str() ([]byte, bool) {
	start := s.i
	s.i++ // "
	escaped := false
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			if !escaped {
				return s.b[start+1 : s.i-1], true
			}
			var out string
			if json.Unmarshal(s.b[start:s.i], &out) != nil {
				return nil, false
			}
			return []byte(out), true
		case c == '\\':
			escaped = true
			if s.i+1 >= len(s.b) {
				return nil, false
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) {
					return nil, false
				}
				for _, h := range s.b[s.i+2 : s.i+6] {
					if !isHex(h) {
						return nil, false
					}
				}
				s.i += 6
			default:
				return nil, false
			}
		case c < 0x20:
			return nil, false
		default:
			s.i++
		}
	}
	return nil, false
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func (s *scanner) number() bool {
	if s.peek() == '-' {
		s.i++
	}
	digits := 0
	switch c := s.peek(); {
	case c == '0':
		s.i++
	case c >= '1' && c <= '9':
		for s.i < len(s.b) && isDigit(s.b[s.i]) {
			s.i++
			digits++
		}
	default:
		return false
	}
	if s.peek() == '.' {
		s.i++
		if !isDigit(s.peek()) {
			return false
		}
		for s.i < len(s.b) && isDigit(s.b[s.i]) {
			s.i++
			digits++
		}
	}
	if digits > maxNumberDigits {
		s.fail = "number has too many digits"
		return false
	}
	if c := s.peek(); c == 'e' || c == 'E' {
		s.i++
		if c := s.peek(); c == '+' || c == '-' {
			s.i++
		}
		if !isDigit(s.peek()) {
			return false
		}
		exp := 0
		for s.i < len(s.b) && isDigit(s.b[s.i]) {
			if exp <= maxNumberExpAbs {
				exp = exp*10 + int(s.b[s.i]-'0')
			}
			s.i++
		}
		if exp > maxNumberExpAbs {
			s.fail = "number exponent is out of range"
			return false
		}
	}
	return true
}

// decodeAny decodes JSON that the scanner has already accepted into the
// generic form that schema validation uses (maps, slices, strings, bools,
// nil and json.Number), with fewer allocations than encoding/json.
func decodeAny(b []byte) (any, error) {
	d := anyDecoder{b: b}
	d.ws()
	v := d.value()
	if d.err != nil {
		return nil, d.err
	}
	return v, nil
}

type anyDecoder struct {
	b   []byte
	i   int
	err error
}

func (d *anyDecoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *anyDecoder) value() any {
	if d.err != nil || d.i >= len(d.b) {
		d.fail()
		return nil
	}
	switch c := d.b[d.i]; {
	case c == '{':
		d.i++
		m := make(map[string]any)
		d.ws()
		if d.i < len(d.b) && d.b[d.i] == '}' {
			d.i++
			return m
		}
		for d.err == nil {
			d.ws()
			k := d.str()
			d.ws()
			d.expect(':')
			d.ws()
			m[k] = d.value()
			d.ws()
			if d.i < len(d.b) && d.b[d.i] == ',' {
				d.i++
				continue
			}
			d.expect('}')
			break
		}
		return m
	case c == '[':
		d.i++
		a := []any{}
		d.ws()
		if d.i < len(d.b) && d.b[d.i] == ']' {
			d.i++
			return a
		}
		for d.err == nil {
			d.ws()
			a = append(a, d.value())
			d.ws()
			if d.i < len(d.b) && d.b[d.i] == ',' {
				d.i++
				continue
			}
			d.expect(']')
			break
		}
		return a
	case c == '"':
		return d.str()
	case c == 't':
		d.i += 4
		return true
	case c == 'f':
		d.i += 5
		return false
	case c == 'n':
		d.i += 4
		return nil
	default:
		start := d.i
		for d.i < len(d.b) {
			switch c := d.b[d.i]; {
			case isDigit(c), c == '-', c == '+', c == '.', c == 'e', c == 'E':
				d.i++
				continue
			}
			break
		}
		return json.Number(d.b[start:d.i])
	}
}

func (d *anyDecoder) expect(c byte) {
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return
	}
	d.fail()
}

func (d *anyDecoder) fail() {
	if d.err == nil {
		d.err = errors.New("invalid JSON")
	}
}

func (d *anyDecoder) str() string {
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		d.fail()
		return ""
	}
	start := d.i
	d.i++
	escaped := false
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case '\\':
			escaped = true
			d.i += 2
			continue
		case '"':
			d.i++
			if !escaped {
				return string(d.b[start+1 : d.i-1])
			}
			var s string
			if err := json.Unmarshal(d.b[start:d.i], &s); err != nil {
				d.fail()
			}
			return s
		}
		d.i++
	}
	d.fail()
	return ""
}

// parseUUID parses the 36-character hyphenated form, any case.
func parseUUID(b []byte) (uuid.UUID, bool) {
	var u uuid.UUID
	if len(b) != 36 || b[8] != '-' || b[13] != '-' || b[18] != '-' || b[23] != '-' {
		return u, false
	}
	j := 0
	for i := 0; i < 36; {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i++
			continue
		}
		hi, ok1 := unhex(b[i])
		lo, ok2 := unhex(b[i+1])
		if !ok1 || !ok2 {
			return u, false
		}
		u[j] = hi<<4 | lo
		j++
		i += 2
	}
	return u, true
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

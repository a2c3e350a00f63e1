package ws

import (
	"strconv"

	"github.com/google/uuid"
)

// head is what the read loop needs of a message before the router parses
// it: whether it is an auth frame, and the pkg_id and req_id to echo in the
// replies the endpoint makes itself (rate limited, duplicate). The router
// stays the one strict parser of envelopes; scanHead only looks.
type head struct {
	pkgID    int64
	reqID    uuid.UUID
	hasReqID bool // req_id read as a non-nil UUID string
	isAuth   bool // a top-level "type" member equal to "auth"
}

// scanHead reads the top-level members "pkg_id", "req_id" and "type" of a
// JSON object, stopping once it has pkg_id and req_id. It is lenient:
// anything it cannot follow ends the scan with what was found so far.
func scanHead(b []byte) head {
	var h head
	pkgFound := false
	i := skipWS(b, 0)
	if i >= len(b) || b[i] != '{' {
		return h
	}
	i++
	for {
		i = skipWS(b, i)
		if i >= len(b) || b[i] != '"' {
			return h
		}
		ks := i + 1
		ke, ok := skipString(b, i)
		if !ok {
			return h
		}
		key := b[ks : ke-1]
		i = skipWS(b, ke)
		if i >= len(b) || b[i] != ':' {
			return h
		}
		i = skipWS(b, i+1)
		vs := i
		ve, ok := skipValue(b, i)
		if !ok {
			return h
		}
		val := b[vs:ve]
		switch string(key) {
		case "pkg_id":
			if n, err := strconv.ParseInt(string(val), 10, 64); err == nil {
				h.pkgID, pkgFound = n, true
			}
		case "req_id":
			if len(val) == 38 && val[0] == '"' {
				if id, err := uuid.ParseBytes(val[1:37]); err == nil && id != uuid.Nil {
					h.reqID, h.hasReqID = id, true
				}
			}
		case "type":
			h.isAuth = string(val) == `"auth"`
		}
		if pkgFound && h.hasReqID {
			// A request: the rest (data) need not be read. An auth frame
			// has neither member.
			return h
		}
		i = skipWS(b, ve)
		if i >= len(b) {
			return h
		}
		switch b[i] {
		case ',':
			i++
		default:
			return h
		}
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] == '"'.
func skipString(b []byte, i int) (int, bool) {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1, true
		}
	}
	return 0, false
}

// skipValue returns the index after the value starting at b[i].
func skipValue(b []byte, i int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				e, ok := skipString(b, i)
				if !ok {
					return 0, false
				}
				i = e - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, true
				}
			}
		}
		return 0, false
	}
	for ; i < len(b); i++ {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i, true
		}
	}
	return i, true
}

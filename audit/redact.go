package audit

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"unicode/utf8"
)

// Redacted replaces sensitive values.
const Redacted = "[REDACTED]"

// DefaultRedactKeys returns the keys whose values NewRedactor redacts when
// it is given none (keys ending in them too; see Redactor).
func DefaultRedactKeys() []string {
	return []string{
		"password", "passwd", "pwd", "token", "access_token", "refresh_token",
		"secret", "api_key", "private_key", "authorization", "ssn", "credit_card",
		"card_number", "cvv",
	}
}

// Redactor removes secrets from entries: values under sensitive keys of
// JSON objects (at any depth, inside arrays too) become "[REDACTED]", and
// bearer tokens and JWT-shaped strings anywhere in a text are replaced.
//
// A key is sensitive when it equals one of the Redactor's keys or ends with
// one of them as its last words: "new_password", "client_secret",
// "x-api-key" and "refresh_token" match "password", "secret", "api_key" and
// "token". Keys are compared case-insensitively, with '-' equal to '_'
// ("PassWord", "Api-Key" and "API_KEY" match); a camel-case word break (a
// lower-case letter or digit followed by an upper-case one) also counts as
// '_', so "apiKey" matches "api_key" and "newPassword" matches "password".
// A listed key inside a longer word, or followed by more words, does not
// match: "passwords_count", "password_hint", "tokens_left" and
// "userpassword" are kept. A Redactor is safe for concurrent use.
type Redactor struct {
	keys map[string]struct{}
	// needles are the strings mayHoldSecrets looks for: each key as
	// normalized and with its '_' removed (a camel-case "apiKey").
	needles [][]byte
}

// NewRedactor returns a Redactor for keys, or for DefaultRedactKeys when
// keys is empty. Give keys in snake case, like the defaults ("api_key", not
// "apiKey"). Include DefaultRedactKeys() to extend the defaults. See
// Redactor for how keys match.
func NewRedactor(keys ...string) *Redactor {
	if len(keys) == 0 {
		keys = DefaultRedactKeys()
	}
	r := &Redactor{keys: make(map[string]struct{}, len(keys))}
	for _, k := range keys {
		n := normKey(k)
		if _, dup := r.keys[n]; dup || n == "" {
			continue
		}
		r.keys[n] = struct{}{}
		r.needles = append(r.needles, []byte(n))
		if joined := strings.ReplaceAll(n, "_", ""); joined != n && joined != "" {
			r.needles = append(r.needles, []byte(joined))
		}
	}
	return r
}

func normKey(k string) string { return strings.ReplaceAll(strings.ToLower(k), "-", "_") }

// camelKey is normKey with a '_' put at each camel-case word break (a
// lower-case letter or digit followed by an upper-case letter); ok is false
// when k has none.
func camelKey(k string) (key string, ok bool) {
	var b strings.Builder
	for i := 0; i < len(k); i++ {
		c := k[i]
		switch {
		case c >= 'A' && c <= 'Z':
			if i > 0 && (k[i-1] >= 'a' && k[i-1] <= 'z' || k[i-1] >= '0' && k[i-1] <= '9') {
				if !ok {
					b.Grow(len(k) + 4)
					b.WriteString(normKey(k[:i]))
					ok = true
				}
				b.WriteByte('_')
			}
			c += 'a' - 'A'
		case c == '-':
			c = '_'
		}
		if ok {
			b.WriteByte(c)
		}
	}
	return b.String(), ok
}

// Sensitive reports whether the value under key is redacted (see Redactor
// for the rule).
func (r *Redactor) Sensitive(key string) bool {
	if r.listed(normKey(key)) {
		return true
	}
	ck, ok := camelKey(key)
	return ok && r.listed(ck)
}

// listed reports whether the normalized key n is a listed key or ends with
// '_' and a listed key.
func (r *Redactor) listed(n string) bool {
	if _, ok := r.keys[n]; ok {
		return true
	}
	for i := 0; i < len(n); i++ {
		if n[i] == '_' {
			if _, ok := r.keys[n[i+1:]]; ok {
				return true
			}
		}
	}
	return false
}

var (
	bearerRE = regexp.MustCompile(`(?i)\bbearer(\s+|%20|\+)[A-Za-z0-9\-._~+/]+=*`)
	jwtRE    = regexp.MustCompile(`eyJ[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*`)
)

// Text returns s with bearer credentials ("Bearer <token>") and JWT-shaped
// strings replaced by "[REDACTED]".
func (r *Redactor) Text(s string) string {
	if hasBearer(s) {
		s = bearerRE.ReplaceAllString(s, "Bearer "+Redacted)
	}
	if strings.Contains(s, "eyJ") {
		s = jwtRE.ReplaceAllString(s, Redacted)
	}
	return s
}

// hasBearer reports whether s contains "bearer" in any case.
func hasBearer(s string) bool {
	for i := 0; i+6 <= len(s); i++ {
		if c := s[i]; (c == 'b' || c == 'B') && strings.EqualFold(s[i:i+6], "bearer") {
			return true
		}
	}
	return false
}

// Value returns v (a value decoded from JSON) with sensitive keys redacted
// and tokens removed from strings, at any depth. Maps and slices are copied.
func (r *Redactor) Value(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, val := range v {
			if r.Sensitive(k) {
				out[k] = Redacted
				continue
			}
			out[r.Text(k)] = r.Value(val)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, val := range v {
			out[i] = r.Value(val)
		}
		return out
	case string:
		return r.Text(clean(v))
	}
	return v
}

// JSON returns raw with sensitive keys redacted and tokens removed. Empty
// input and null give nil; input that is not JSON becomes a JSON string of
// its redacted text.
func (r *Redactor) JSON(raw json.RawMessage) json.RawMessage {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if utf8.Valid(raw) && json.Valid(raw) && !r.mayHoldSecrets(raw) {
		return bytes.Clone(raw)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil || dec.More() {
		b, _ := json.Marshal(r.Text(clean(string(raw))))
		return b
	}
	b, err := json.Marshal(r.Value(v))
	if err != nil {
		return nil
	}
	return b
}

// mayHoldSecrets reports whether raw contains, in any case, a sensitive key
// name, a bearer scheme or the start of a JWT. When it does not, the JSON
// needs no rewriting.
func (r *Redactor) mayHoldSecrets(raw []byte) bool {
	if bytes.Contains(raw, []byte("eyJ")) {
		return true
	}
	norm := make([]byte, len(raw))
	for i, c := range raw {
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c == '-':
			c = '_'
		}
		norm[i] = c
	}
	if bytes.Contains(norm, []byte("bearer")) {
		return true
	}
	for _, k := range r.needles {
		if bytes.Contains(norm, k) {
			return true
		}
	}
	return false
}

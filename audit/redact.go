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
// it is given none.
func DefaultRedactKeys() []string {
	return []string{
		"password", "passwd", "pwd", "token", "access_token", "refresh_token",
		"secret", "api_key", "private_key", "authorization", "ssn", "credit_card",
		"card_number", "cvv",
	}
}

// Redactor removes secrets from entries: values under sensitive keys of
// JSON objects (at any depth, inside arrays too) become "[REDACTED]", and
// bearer tokens and JWT-shaped strings anywhere in a text are replaced. Keys
// match case-insensitively, with '-' equal to '_' ("Api-Key" matches
// "api_key"). A Redactor is safe for concurrent use.
type Redactor struct {
	keys map[string]struct{}
}

// NewRedactor returns a Redactor for keys, or for DefaultRedactKeys when
// keys is empty. Include DefaultRedactKeys() to extend the defaults.
func NewRedactor(keys ...string) *Redactor {
	if len(keys) == 0 {
		keys = DefaultRedactKeys()
	}
	r := &Redactor{keys: make(map[string]struct{}, len(keys))}
	for _, k := range keys {
		r.keys[normKey(k)] = struct{}{}
	}
	return r
}

func normKey(k string) string { return strings.ReplaceAll(strings.ToLower(k), "-", "_") }

// Sensitive reports whether the value under key is redacted.
func (r *Redactor) Sensitive(key string) bool {
	_, ok := r.keys[normKey(key)]
	return ok
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
	for k := range r.keys {
		if bytes.Contains(norm, []byte(k)) {
			return true
		}
	}
	return false
}

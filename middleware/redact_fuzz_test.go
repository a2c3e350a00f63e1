package middleware

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzRedactQuery checks that whatever the query, every parameter whose
// name is sensitive leaves the log with its value replaced, and that the
// other parameters are kept as sent.
func FuzzRedactQuery(f *testing.F) {
	for _, seed := range []string{
		"token=abc", "a=1&access_token=x&b=2", "%zz=1", "Password=p%20w", "token", "&&=&",
		"acc%65ss_token=abc", "x=token", "q=a;token=b",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		out := redactQuery(raw, []string{"sig"})
		in, got := strings.Split(raw, "&"), strings.Split(out, "&")
		if len(in) != len(got) {
			t.Fatalf("%q -> %q: parameter count changed", raw, out)
		}
		for i, part := range in {
			key, _, hasValue := strings.Cut(part, "=")
			name, err := url.QueryUnescape(key)
			switch {
			case err != nil:
				if got[i] != redactedValue {
					t.Fatalf("%q: undecodable parameter %q kept as %q", raw, part, got[i])
				}
			case sensitiveKey(name, []string{"sig"}):
				want := key
				if hasValue {
					want += "=" + redactedValue
				}
				if got[i] != want {
					t.Fatalf("%q: sensitive parameter %q logged as %q", raw, part, got[i])
				}
			default:
				if got[i] != part {
					t.Fatalf("%q: parameter %q changed to %q", raw, part, got[i])
				}
			}
		}
	})
}

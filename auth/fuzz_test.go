package auth_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/pkgroute/pkgroute/auth"
)

func FuzzParseBearer(f *testing.F) {
	for _, s := range []string{
		"", "Bearer", "Bearer ", "Bearer a.b.c", "bearer A-_~+/.x==", "Basic Zm9v", "a.b.c",
		"Bearer " + strings.Repeat(".", 9000), "Bearer a b", "Bearer\ta", "BEARER x=y",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		tok, err := auth.ParseBearer(in)
		if err != nil {
			if tok != "" {
				t.Fatalf("error %v with token %q", err, tok)
			}
			if !errors.Is(err, auth.ErrNoToken) && !errors.Is(err, auth.ErrTokenDecode) {
				t.Fatalf("error %v wraps no sentinel", err)
			}
			return
		}
		if tok == "" || len(tok) > auth.MaxTokenBytes {
			t.Fatalf("accepted token of length %d", len(tok))
		}
		if !strings.EqualFold(in[:7], "Bearer ") || in[7:] != tok {
			t.Fatalf("%q parsed to %q", in, tok)
		}
		if strings.ContainsAny(tok, " \t\r\n,;\"") {
			t.Fatalf("accepted token with a separator: %q", tok)
		}
	})
}

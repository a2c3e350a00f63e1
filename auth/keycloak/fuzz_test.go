package keycloak_test

import (
	"context"
	"strings"
	"testing"

	"github.com/pkgroute/pkgroute/auth/authtest"
	"github.com/pkgroute/pkgroute/auth/keycloak"
)

// FuzzAuthenticate feeds mutated tokens to the verifier: it must never
// panic, and must accept only the tokens the issuer signed.
func FuzzAuthenticate(f *testing.F) {
	fx := newFixture(f, keycloak.Config{CacheSize: -1})
	ec := fx.iss.KeyIDs(authtest.ES256)[0]
	signed := map[string]bool{}
	for _, tok := range []string{
		fx.iss.Token("ada", "r"),
		fx.sign(f, fx.iss.Claims("bob"), authtest.WithKey(ec)),
	} {
		signed[tok] = true
		f.Add(tok)
		parts := strings.Split(tok, ".")
		f.Add(parts[0] + "." + parts[1] + ".")
		f.Add(parts[0] + ".." + parts[2])
	}
	f.Add(fx.sign(f, fx.iss.Claims("eve"), authtest.WithAlg("none")))
	f.Add("..")
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, tok string) {
		p, err := fx.v.Authenticate(context.Background(), tok)
		if err == nil && !signed[tok] {
			t.Fatalf("accepted a token the issuer did not sign: %q (%+v)", tok, p)
		}
		if err != nil && p != nil {
			t.Fatalf("principal with error %v", err)
		}
	})
}

package keycloak_test

import (
	"context"
	"testing"

	"github.com/pkgroute/pkgroute/auth/authtest"
	"github.com/pkgroute/pkgroute/auth/keycloak"
)

func benchVerify(b *testing.B, cfg keycloak.Config, alg string) {
	f := newFixture(b, cfg)
	kid := f.iss.KeyIDs(alg)[0]
	tok := f.sign(b, f.iss.Claims("ada", "get-authors", "create-author"), authtest.WithKey(kid))
	ctx := context.Background()
	if _, err := f.v.Authenticate(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.v.Authenticate(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyRS256 verifies an RS256 token with a cached key and no
// verified-token cache: signature, claims, principal.
func BenchmarkVerifyRS256(b *testing.B) {
	benchVerify(b, keycloak.Config{CacheSize: -1}, authtest.RS256)
}

// BenchmarkVerifyES256 is the same with an ES256 token.
func BenchmarkVerifyES256(b *testing.B) {
	benchVerify(b, keycloak.Config{CacheSize: -1}, authtest.ES256)
}

// BenchmarkVerifyRS256Cached verifies a token found in the verified-token
// cache.
func BenchmarkVerifyRS256Cached(b *testing.B) {
	benchVerify(b, keycloak.Config{}, authtest.RS256)
}

package keycloak

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func rsaJWK(t *testing.T, bits int, kid string) map[string]any {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	require.NoError(t, err)
	return map[string]any{"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
		"n":   base64.RawURLEncoding.EncodeToString(k.N.Bytes()),
		"e":   base64.RawURLEncoding.EncodeToString(big.NewInt(int64(k.E)).Bytes()),
		"x5c": []string{"MIIC..."}, "x5t": "abc", "x5t#S256": "def"}
}

func ecJWK(t *testing.T, kid string) map[string]any {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	raw, err := k.PublicKey.Bytes()
	require.NoError(t, err)
	return map[string]any{"kty": "EC", "kid": kid, "crv": "P-256",
		"x": base64.RawURLEncoding.EncodeToString(raw[1:33]),
		"y": base64.RawURLEncoding.EncodeToString(raw[33:])}
}

func with(m map[string]any, k string, v any) map[string]any {
	out := map[string]any{}
	for kk, vv := range m {
		out[kk] = vv
	}
	if v == nil {
		delete(out, k)
	} else {
		out[k] = v
	}
	return out
}

func TestParseJWKS(t *testing.T) {
	good := rsaJWK(t, 2048, "rsa")
	ec := ecJWK(t, "ec")
	doc := func(keys ...map[string]any) []byte {
		b, err := json.Marshal(map[string]any{"keys": keys})
		require.NoError(t, err)
		return b
	}
	keys, skipped, err := parseJWKS(doc(
		good,
		ec,
		with(with(good, "kid", "enc"), "use", "enc"),
		with(with(with(good, "kid", "oaep"), "alg", "RSA-OAEP"), "use", nil),
		with(with(good, "kid", "ps"), "alg", "PS256"),
		rsaJWK(t, 1024, "small"),
		with(with(ec, "kid", "p384"), "crv", "P-384"),
		with(with(ec, "kid", "badpoint"), "y", ec["x"]),
		with(good, "kid", nil),
		with(with(good, "kid", "oct"), "kty", "oct"),
		with(with(good, "kid", "e"), "e", "AAAAAAAB"),
		rsaJWK(t, 2048, "dup"), rsaJWK(t, 2048, "dup"), rsaJWK(t, 2048, "dup"),
	))
	require.NoError(t, err)
	assert.Len(t, keys, 2)
	assert.Equal(t, "RS256", keys["rsa"].alg)
	assert.Equal(t, "ES256", keys["ec"].alg)
	assert.Len(t, skipped, 11) // the first "dup" was taken, then dropped with the second

	// enc keys are refused even when they are otherwise valid.
	keys, _, err = parseJWKS(doc(with(good, "use", "enc"), ec))
	require.NoError(t, err)
	assert.NotContains(t, keys, "rsa")

	for _, bad := range []string{`nope`, `{"keys":[]}`, `{"keys":[{"kty":"RSA"}]}`, `{}`} {
		_, _, err := parseJWKS([]byte(bad))
		assert.Error(t, err, bad)
	}
}

func TestTokenKey(t *testing.T) {
	for _, n := range []int{0, 1, 511, 512, 513, 1500, 8192} {
		s := strings.Repeat("x", n) + "y"
		assert.Equal(t, sha256.Sum256([]byte(s)), tokenKey(s), n)
	}
}

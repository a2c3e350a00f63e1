package keycloak

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
)

// maxJWKSBytes caps the key set document read from the identity provider.
const maxJWKSBytes = 1 << 20

// minRSABits is the smallest RSA modulus accepted in a key set.
const minRSABits = 2048

// verificationKey is a usable public key from the JWKS with the one
// algorithm it may verify.
type verificationKey struct {
	alg string
	pub crypto.PublicKey
}

// keySet maps kid to key. It is immutable once built.
type keySet map[string]verificationKey

type rawJWK struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	N   string `json:"n"`
	E   string `json:"e"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// parseJWKS turns a JWKS document into a key set. Keys that are for
// encryption, of an unsupported type or algorithm, malformed, or with a
// duplicate kid are skipped and reported in skipped. A document without any
// usable key is an error.
func parseJWKS(doc []byte) (keys keySet, skipped []string, err error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		return nil, nil, fmt.Errorf("decode key set: %w", err)
	}
	keys = make(keySet, len(set.Keys))
	seen := make(map[string]bool, len(set.Keys))
	for _, raw := range set.Keys {
		var k rawJWK
		if err := json.Unmarshal(raw, &k); err != nil {
			skipped = append(skipped, "malformed key: "+err.Error())
			continue
		}
		if seen[k.Kid] {
			skipped = append(skipped, fmt.Sprintf("kid %q: duplicate", k.Kid))
			delete(keys, k.Kid) // ambiguous: use none of them
			continue
		}
		seen[k.Kid] = true
		vk, err := parseJWK(k)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("kid %q: %v", k.Kid, err))
			continue
		}
		keys[k.Kid] = vk
	}
	if len(keys) == 0 {
		return nil, skipped, errors.New("key set has no usable signing key")
	}
	return keys, skipped, nil
}

func b64(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

func parseJWK(k rawJWK) (verificationKey, error) {
	if k.Kid == "" {
		return verificationKey{}, errors.New("no kid")
	}
	if k.Use != "" && k.Use != "sig" {
		return verificationKey{}, fmt.Errorf("use %q", k.Use)
	}
	switch k.Kty {
	case "RSA":
		if k.Alg != "" && k.Alg != "RS256" {
			return verificationKey{}, fmt.Errorf("alg %q not accepted", k.Alg)
		}
		n, err := b64(k.N)
		if err != nil || len(n) == 0 {
			return verificationKey{}, errors.New("bad modulus")
		}
		e, err := b64(k.E)
		if err != nil || len(e) == 0 || len(e) > 4 {
			return verificationKey{}, errors.New("bad exponent")
		}
		pub := &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}
		if pub.N.BitLen() < minRSABits {
			return verificationKey{}, fmt.Errorf("RSA key of %d bits", pub.N.BitLen())
		}
		if pub.E < 3 || pub.E%2 == 0 {
			return verificationKey{}, errors.New("bad exponent")
		}
		return verificationKey{alg: "RS256", pub: pub}, nil
	case "EC":
		if k.Alg != "" && k.Alg != "ES256" {
			return verificationKey{}, fmt.Errorf("alg %q not accepted", k.Alg)
		}
		if k.Crv != "P-256" {
			return verificationKey{}, fmt.Errorf("curve %q", k.Crv)
		}
		x, errX := b64(k.X)
		y, errY := b64(k.Y)
		if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
			return verificationKey{}, errors.New("bad coordinates")
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
		if err != nil {
			return verificationKey{}, err
		}
		return verificationKey{alg: "ES256", pub: pub}, nil
	default:
		return verificationKey{}, fmt.Errorf("kty %q", k.Kty)
	}
}

// fetchJWKS downloads and parses the key set at url.
func fetchJWKS(ctx context.Context, client *http.Client, url string) (keySet, []string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxJWKSBytes))
		return nil, nil, fmt.Errorf("key set: HTTP %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read key set: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return nil, nil, errors.New("key set larger than 1 MiB")
	}
	return parseJWKS(body)
}

package auth

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// MaxTokenBytes is the longest bearer token ParseBearer accepts. Verifiers
// may apply the same cap again before parsing.
const MaxTokenBytes = 8 << 10

// ParseBearer parses a credential of the form "Bearer <token>" strictly:
// the scheme is matched case-insensitively and followed by exactly one
// space; the token must be a non-empty RFC 6750 b64token (letters, digits,
// "-._~+/", trailing "=") of at most MaxTokenBytes. A bare token without
// the scheme is an error. An empty credential, or the scheme name alone
// ("Bearer" without a token), wraps ErrNoToken: no token was sent; any
// other failure wraps ErrTokenDecode, and credentials of another scheme
// ("Basic ...") also match [ErrOtherScheme].
//
// The WebSocket first-message handshake uses it for the "token" member.
func ParseBearer(credential string) (string, error) {
	if credential == "" {
		return "", ErrNoToken
	}
	const scheme = "Bearer "
	if strings.EqualFold(strings.TrimRight(credential, " \t"), "Bearer") {
		return "", errEmptyBearer
	}
	if i := strings.IndexByte(credential, ' '); i > 0 && !strings.EqualFold(credential[:i], "Bearer") {
		return "", errOtherScheme
	}
	if len(credential) < len(scheme) || !strings.EqualFold(credential[:len(scheme)], scheme) {
		return "", fmt.Errorf("%w: credential is not of the form \"Bearer <token>\"", ErrTokenDecode)
	}
	token := credential[len(scheme):]
	switch {
	case token == "":
		return "", fmt.Errorf("%w: empty bearer token", ErrTokenDecode)
	case len(token) > MaxTokenBytes:
		return "", fmt.Errorf("%w: bearer token longer than %d bytes", ErrTokenDecode, MaxTokenBytes)
	}
	eq := false
	for i := 0; i < len(token); i++ {
		c := token[i]
		switch {
		case c == '=':
			eq = true
		case eq:
			return "", fmt.Errorf("%w: bearer token has characters after '='", ErrTokenDecode)
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		default:
			return "", fmt.Errorf("%w: bearer token has an invalid character", ErrTokenDecode)
		}
	}
	if token[0] == '=' {
		return "", fmt.Errorf("%w: bearer token has no characters before '='", ErrTokenDecode)
	}
	return token, nil
}

// ErrOtherScheme is matched (errors.Is) by the error that ParseBearer and
// BearerToken return for credentials of an authentication scheme other than
// Bearer; that error matches ErrTokenDecode too. Such a request carries no
// bearer token: the HTTP middleware treats it as anonymous (RFC 6750
// section 3.1: no error code for an unsupported authentication method).
var ErrOtherScheme = errors.New("credential of another authentication scheme")

var errOtherScheme = fmt.Errorf("%w: %w", ErrTokenDecode, ErrOtherScheme)

var errEmptyBearer = fmt.Errorf("%w: the Bearer scheme without a token", ErrNoToken)

// BearerToken returns the token of the request's Authorization header,
// parsed by ParseBearer. No header wraps ErrNoToken; more than one
// Authorization header, another scheme or a malformed token wraps
// ErrTokenDecode.
func BearerToken(r *http.Request) (string, error) {
	values := r.Header.Values("Authorization")
	switch len(values) {
	case 0:
		return "", ErrNoToken
	case 1:
		return ParseBearer(values[0])
	default:
		return "", fmt.Errorf("%w: more than one Authorization header", ErrTokenDecode)
	}
}

package pkgroutetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pkgroute/pkgroute/auth/authtest"
	"github.com/pkgroute/pkgroute/ratelimit"
	"github.com/pkgroute/pkgroute/router"
	"github.com/pkgroute/pkgroute/router/ws/wstest"
	"github.com/pkgroute/pkgroute/server"
)

// Server is a package router served by package server on a loopback
// listener for one test.
type Server[T router.ID] struct {
	// URL is the base URL, http://127.0.0.1:<port>.
	URL string
	// WSURL is the WebSocket endpoint's URL, ws://127.0.0.1:<port>/web.
	WSURL string
	// Issuer signs the tokens Token returns and verifies them (the
	// server's Authenticator unless cfg gave one).
	Issuer *authtest.Issuer
	// Server is the assembled server.
	Server *server.Server[T]

	t      testing.TB
	client *http.Client
}

// NewServer assembles r with server.New(r, cfg) and runs it on a loopback
// listener until the test ends (then it drains and checks that Run
// returned nil). Zero fields of cfg are filled for a test: the
// Authenticator and Login are a fresh authtest.Issuer's, the Limiter an
// in-memory one, and without an Audit logger the audit trail is off
// (Insecure.NoAudit). It fails the test if the server cannot be built.
func NewServer[T router.ID](t testing.TB, r *router.PackageRouter[T], cfg server.Config) *Server[T] {
	t.Helper()
	iss, err := authtest.New(authtest.Config{})
	if err != nil {
		t.Fatalf("pkgroutetest: issuer: %v", err)
	}
	if cfg.Authenticator == nil {
		cfg.Authenticator = iss
		if cfg.Login == nil {
			cfg.Login = iss.LoginHandler()
		}
	}
	if cfg.Limiter == nil && !cfg.Insecure.NoRateLimit {
		cfg.Limiter = ratelimit.NewMemory(ratelimit.MemoryConfig{Name: "http"})
	}
	if cfg.Audit == nil {
		cfg.Insecure.NoAudit = true
	}
	if cfg.Listener == nil {
		if cfg.Listener, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatalf("pkgroutetest: listen: %v", err)
		}
	}
	base := "http://" + cfg.Listener.Addr().String()
	srv, err := server.New(r, cfg)
	if err != nil {
		_ = cfg.Listener.Close()
		t.Fatalf("pkgroutetest: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	s := &Server[T]{
		URL: base, WSURL: wstest.URL(base, server.PathWebSocket), Issuer: iss, Server: srv, t: t,
		client: &http.Client{Transport: &http.Transport{}},
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("pkgroutetest: server stopped with %v", err)
		}
		s.client.CloseIdleConnections()
	})
	return s
}

// Token returns an access token, signed by Issuer, for a user holding
// roles. Each set of roles is its own user ("test-<roles joined by +>").
func (s *Server[T]) Token(roles ...string) string {
	p := Principal(roles...)
	c := s.Issuer.Claims(p.Username, roles...)
	c["sub"] = p.ID
	tok, err := s.Issuer.Sign(c)
	if err != nil {
		s.t.Fatalf("pkgroutetest: sign token: %v", err)
	}
	return tok
}

// Dial opens a WebSocket connection to the server as a user holding roles;
// it is closed when the test ends. It fails the test if the upgrade is
// refused.
func (s *Server[T]) Dial(roles ...string) *wstest.Client {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := wstest.Dial(ctx, s.WSURL, s.Token(roles...))
	if err != nil {
		s.t.Fatalf("pkgroutetest: dial %s: %v", s.WSURL, err)
	}
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

// Response is an HTTP answer, its body read.
type Response struct {
	// Status is the HTTP status code.
	Status int
	// Header is the response header.
	Header http.Header
	// Body is the whole body.
	Body []byte
}

// RequireStatus fails the test now unless the HTTP status is want.
func (r *Response) RequireStatus(t testing.TB, want int) *Response {
	t.Helper()
	if r.Status != want {
		t.Fatalf("pkgroutetest: HTTP %d, want %d; body: %s", r.Status, want, bytes.TrimSpace(r.Body))
	}
	return r
}

// ErrorCode returns the code of an HTTP error body
// {"error":{"code",...}}, or "".
func (r *Response) ErrorCode() string {
	var b struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(r.Body, &b)
	return b.Error.Code
}

// Do sends an HTTP request to the server as a user holding roles (no roles:
// anonymous, without an Authorization header). body, when not nil, is
// encoded as JSON ([]byte and string are sent as they are).
func (s *Server[T]) Do(method, path string, body any, roles ...string) *Response {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			s.t.Fatalf("pkgroutetest: encode body: %v", err)
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		s.t.Fatalf("pkgroutetest: %v", err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if len(roles) > 0 {
		req.Header.Set("Authorization", "Bearer "+s.Token(roles...))
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.t.Fatalf("pkgroutetest: %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil && !errors.Is(err, io.EOF) {
		s.t.Fatalf("pkgroutetest: read body: %v", err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// SendHTTP calls package id over the HTTP package bridge as a user holding
// roles (none: anonymous) and returns the reply, whatever the HTTP status
// the bridge chose for it. A request the HTTP layer refused before the
// bridge (401 without a token, 429, 413) is answered with an HTTP error
// body instead of an envelope: its reply has status_code StatusError (or
// StatusRateLimited for 429) and the error object as data, so that
// RequireCode reads its code.
func (s *Server[T]) SendHTTP(t testing.TB, id T, in any, roles ...string) *Reply {
	t.Helper()
	body := map[string]json.RawMessage{}
	if d := dataOf(t, in); d != nil {
		body["data"] = d
	}
	resp := s.Do(http.MethodPost, fmt.Sprintf("/api/pkg/%d", int64(id)), body, roles...)
	var refused struct {
		Error json.RawMessage `json:"error"`
	}
	if resp.Status >= 400 && json.Unmarshal(resp.Body, &refused) == nil && refused.Error != nil {
		status := router.StatusError
		if resp.Status == http.StatusTooManyRequests {
			status = router.StatusRateLimited
		}
		return &Reply{Status: status, Meta: json.RawMessage("null"), Data: refused.Error}
	}
	return decodeReply(t, resp.Body)
}

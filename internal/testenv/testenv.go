// Package testenv gives tests access to the real PostgreSQL and Redis
// servers: the shared ones (a fresh database or key prefix per test) and
// private ones started by fault tests. When a service is unavailable the test
// is skipped with a one-line reason, unless PKGROUTE_REQUIRE_SERVICES=1, in
// which case it fails.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"testing"
	"time"
)

// Environment variables read by this package.
const (
	EnvPostgresURL     = "PKGROUTE_TEST_POSTGRES_URL"
	EnvRedisURL        = "PKGROUTE_TEST_REDIS_URL"
	EnvRequireServices = "PKGROUTE_REQUIRE_SERVICES"
)

// Default service URLs.
const (
	DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	DefaultRedisURL    = "redis://127.0.0.1:6379/0"
)

// Required reports whether missing services must fail tests instead of
// skipping them.
func Required() bool { return os.Getenv(EnvRequireServices) == "1" }

// Unavailable skips t, or fails it when services are required, with reason.
func Unavailable(t testing.TB, reason string) {
	t.Helper()
	if Required() {
		t.Fatalf("%s (required by %s=1)", reason, EnvRequireServices)
	}
	t.Skip(reason)
}

func getenv(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// RandomName returns prefix followed by 12 random hex characters.
func RandomName(prefix string) string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testenv: free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// setupContext bounds the set-up and clean-up work of a test on a shared
// server (create and drop a database, flush keys). It is generous: on a
// loaded machine CREATE DATABASE alone can take seconds, and an unreachable
// server fails at once anyway.
func setupContext(t testing.TB) (context.Context, context.CancelFunc) {
	ctx := context.Background()
	if tt, ok := t.(interface{ Context() context.Context }); ok {
		ctx = tt.Context()
	}
	return context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
}

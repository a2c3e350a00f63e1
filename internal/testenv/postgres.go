package testenv

import (
	"database/sql"
	"fmt"
	"net/url"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// PostgresURL returns the URL of a fresh, empty database with a random name
// on the shared PostgreSQL server. The database is dropped at cleanup.
func PostgresURL(t testing.TB) string {
	t.Helper()
	base := getenv(EnvPostgresURL, DefaultPostgresURL)
	admin, err := sql.Open("pgx", base)
	if err != nil {
		Unavailable(t, "postgres: "+err.Error())
	}
	ctx, cancel := setupContext(t)
	defer cancel()
	if err := admin.PingContext(ctx); err != nil {
		admin.Close()
		Unavailable(t, fmt.Sprintf("postgres not reachable at %s: %v", redactURL(base), err))
	}
	name := RandomName("pkgroute_test_")
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		t.Fatalf("testenv: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := setupContext(t)
		defer cancel()
		defer admin.Close()
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("testenv: drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("testenv: parse %s: %v", EnvPostgresURL, err)
	}
	u.Path = "/" + name
	return u.String()
}

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

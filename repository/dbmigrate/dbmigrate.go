package dbmigrate

import (
	"context"
	"fmt"
	"hash/fnv"
	"io/fs"
	"path"
	"strings"
	"testing/fstest"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
	"github.com/uptrace/bun/migrate"
)

// Config configures Migrate.
type Config struct {
	// Table is the history table of this migration set, e.g.
	// "authorsvc_migrations". Default "bun_migrations".
	Table string
	// LockTimeout bounds how long Migrate waits for another process that
	// is migrating the same set. Default 30 s. PostgreSQL uses an advisory
	// lock; other databases use bun's lock table (Table + "_locks"), whose
	// row stays behind if a process dies while migrating.
	LockTimeout time.Duration
}

// Migrate applies the migrations of fsys that db has not applied yet, in
// order, and returns their names (e.g. "001_authors"). It is safe to call
// from several processes at once: one applies, the others wait for it.
func Migrate(ctx context.Context, db *bun.DB, fsys fs.FS, cfg Config) ([]string, error) {
	if cfg.Table == "" {
		cfg.Table = "bun_migrations"
	}
	if cfg.LockTimeout <= 0 {
		cfg.LockTimeout = 30 * time.Second
	}
	files, err := Select(fsys, db.Dialect().Name())
	if err != nil {
		return nil, err
	}
	migrations := migrate.NewMigrations()
	if err := migrations.Discover(files); err != nil {
		return nil, fmt.Errorf("dbmigrate: %w", err)
	}
	m := migrate.NewMigrator(db, migrations,
		migrate.WithTableName(cfg.Table),
		migrate.WithLocksTableName(cfg.Table+"_locks"),
		migrate.WithMarkAppliedOnSuccess(true))

	lockCtx, cancel := context.WithTimeout(ctx, cfg.LockTimeout)
	defer cancel()
	if db.Dialect().Name() == dialect.PG {
		// A session-level advisory lock serialises migrators, Init
		// included, and is released by the server if this process dies.
		unlock, err := advisoryLock(lockCtx, db, cfg.Table)
		if err != nil {
			return nil, err
		}
		defer unlock()
		if err := m.Init(ctx); err != nil {
			return nil, fmt.Errorf("dbmigrate: init %s: %w", cfg.Table, err)
		}
	} else {
		if err := m.Init(ctx); err != nil {
			return nil, fmt.Errorf("dbmigrate: init %s: %w", cfg.Table, err)
		}
		if err := lock(lockCtx, m); err != nil {
			return nil, err
		}
		defer func() { _ = m.Unlock(context.WithoutCancel(ctx)) }()
	}

	group, err := m.Migrate(ctx)
	var names []string
	if group != nil {
		for _, mig := range group.Migrations {
			if mig.IsApplied() {
				names = append(names, mig.String())
			}
		}
	}
	if err != nil {
		return names, fmt.Errorf("dbmigrate: %w", err)
	}
	return names, nil
}

// advisoryLock takes a PostgreSQL advisory lock named after table on a
// connection of its own and returns the function that releases it.
func advisoryLock(ctx context.Context, db *bun.DB, table string) (func(), error) {
	if db.DB.Stats().MaxOpenConnections == 1 {
		return nil, fmt.Errorf("dbmigrate: PostgreSQL migrations need a pool of at least two connections")
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("dbmigrate: lock: %w", err)
	}
	h := fnv.New64a()
	h.Write([]byte("pkgroute/dbmigrate/" + table))
	key := int64(h.Sum64())
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock(?)", key); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("dbmigrate: lock: %w", err)
	}
	return func() {
		_, _ = conn.ExecContext(context.Background(), "SELECT pg_advisory_unlock(?)", key)
		_ = conn.Close()
	}, nil
}

// lock takes bun's table lock, retrying while another process holds it.
func lock(ctx context.Context, m *migrate.Migrator) error {
	delay := 50 * time.Millisecond
	for {
		err := m.Lock(ctx)
		if err == nil {
			return nil
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("dbmigrate: lock: %w", err)
		case <-t.C:
		}
		delay = min(delay*2, time.Second)
	}
}

// Select returns the migration files of fsys that apply to dialect d, under
// the names bun/migrate expects (dialect tags removed), as described in the
// package documentation. Files that are not migrations are ignored.
func Select(fsys fs.FS, d dialect.Name) (fs.FS, error) {
	tag := dialectTag(d)
	out := fstest.MapFS{}
	specific := map[string]bool{}
	err := fs.WalkDir(fsys, ".", func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if de.IsDir() {
			return nil
		}
		base := path.Base(p)
		var dir string
		switch {
		case strings.HasSuffix(base, ".up.sql"):
			dir = ".up.sql"
		case strings.HasSuffix(base, ".down.sql"):
			dir = ".down.sql"
		default:
			return nil
		}
		stem := strings.TrimSuffix(base, dir)
		tx := false
		fileTag := ""
		for {
			switch {
			case strings.HasSuffix(stem, ".tx"):
				stem, tx = strings.TrimSuffix(stem, ".tx"), true
				continue
			case strings.HasSuffix(stem, ".pg"):
				stem, fileTag = strings.TrimSuffix(stem, ".pg"), "pg"
				continue
			case strings.HasSuffix(stem, ".sqlite"):
				stem, fileTag = strings.TrimSuffix(stem, ".sqlite"), "sqlite"
				continue
			}
			break
		}
		if fileTag != "" && fileTag != tag {
			return nil
		}
		key := stem + dir
		if specific[key] && fileTag == "" {
			return nil // the dialect's own file wins
		}
		data, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		name := stem
		if tx {
			name += ".tx"
		}
		name += dir
		// Drop a generic file of the same migration, with or without .tx.
		delete(out, stem+dir)
		delete(out, stem+".tx"+dir)
		out[name] = &fstest.MapFile{Data: data, Mode: 0o444}
		if fileTag != "" {
			specific[key] = true
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dbmigrate: read migrations: %w", err)
	}
	return out, nil
}

func dialectTag(d dialect.Name) string {
	switch d {
	case dialect.PG:
		return "pg"
	case dialect.SQLite:
		return "sqlite"
	}
	return d.String()
}

// Command todo is a small pkgroute service: two typed packages over SQLite,
// served over WebSocket (/web) and the HTTP bridge (/api/pkg/{pkg_id}) with
// development auth. docs/getting-started.md builds it step by step.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"

	"github.com/pkgroute/pkgroute/audit"
	"github.com/pkgroute/pkgroute/auth/authtest"
	"github.com/pkgroute/pkgroute/middleware/health"
	"github.com/pkgroute/pkgroute/ratelimit"
	"github.com/pkgroute/pkgroute/repository"
	"github.com/pkgroute/pkgroute/repository/dbopen"
	"github.com/pkgroute/pkgroute/server"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", "127.0.0.1:8000")
	if err == nil {
		err = run(ctx, ln, "sqlite:todo.db", slog.New(slog.NewTextHandler(os.Stderr, nil)))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run serves the service on ln until ctx ends.
func run(ctx context.Context, ln net.Listener, dsn string, log *slog.Logger) error {
	db, err := dbopen.Open(ctx, dsn, dbopen.Config{Logger: log})
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.NewCreateTable().Model((*Todo)(nil)).IfNotExists().Exec(ctx); err != nil {
		return err
	}
	todos, err := repository.New[Todo](db, repository.Config{})
	if err != nil {
		return err
	}
	dev, err := authtest.New(authtest.Config{ClientID: "todo", Users: []authtest.User{
		{Username: "ada", Password: "ada", Roles: []string{RoleRead, RoleWrite}},
	}})
	if err != nil {
		return err
	}
	srv, err := server.New(NewRouter(todos), server.Config{
		Listener:      ln,
		Authenticator: dev,                // keycloak.NewVerifier in production
		Login:         dev.LoginHandler(), // POST /auth/login and /auth/refresh
		Limiter:       ratelimit.NewMemory(ratelimit.MemoryConfig{Name: "http"}),
		Audit:         audit.New(audit.Config{Sink: audit.SlogSink(log), Logger: log}),
		Checks:        []health.Check{{Name: "database", Func: db.PingContext}},
		Logger:        log,
	})
	if err != nil {
		return err
	}
	return srv.Run(ctx)
}

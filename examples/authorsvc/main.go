// Command authorsvc is the pkgroute reference application: an author
// service that serves the same business logic over WebSocket packages and
// HTTP routes, with authentication, role checks, limits, audit and metrics.
//
// Run it with `go run ./examples/authorsvc`; it starts on embedded defaults
// (SQLite, in-memory limits, a development token issuer). Configuration is
// read from the environment; see config.go and the README.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "authorsvc:", err)
		var cerr *configError
		if errors.As(err, &cerr) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

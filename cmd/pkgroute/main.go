// Command pkgroute is the pkgroute command-line tool.
//
// Usage:
//
//	pkgroute load [flags]   generate load against a WebSocket server
//
// `pkgroute load -h` lists the load generator's flags; docs/performance.md
// shows how the side-by-side harness in bench/ uses it.
//
// # load
//
// The load generator (RunLoad, LoadConfig, LoadReport) opens connections
// to a WebSocket server, keeps a number of requests in flight on each
// (matched by their ids), and reports throughput, latency percentiles,
// errors by status and close code and, given the server's process id, its
// CPU time per request and resident memory.
//
// Two wire protocols are spoken: pkgroute's envelopes (docs/protocol.md:
// header or first-message authentication, requests matched by req_id) and
// centrifuge's JSON protocol (a connect command, then rpc commands matched
// by id), so that a pkgroute server can be compared with a centrifuge
// server by the same client.
//
// Every run is bounded in time (LoadConfig.Duration, at most MaxDuration)
// and optionally in count (LoadConfig.Requests), and only reaches loopback
// addresses unless LoadConfig.AllowRemote is set.
//
// In idle mode (LoadConfig.Idle) the connections are opened,
// authenticated and held for LoadConfig.Duration without requests; the
// report gives the server's resident memory and goroutines per connection.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// command is one subcommand: it returns the process exit status.
type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) int
}

var commands = []command{
	{"load", "generate load against a WebSocket server and report latency, throughput and server cost", loadCmd},
}

// run dispatches to a subcommand. Exit status: 0 success, 1 failure,
// 2 usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return 0
	}
	for _, c := range commands {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "pkgroute: unknown command %q\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: pkgroute <command> [flags]")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "commands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "run 'pkgroute <command> -h' for a command's flags")
}

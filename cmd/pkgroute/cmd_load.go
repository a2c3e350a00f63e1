package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
)

// loadCmd is `pkgroute load`.
func loadCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	var (
		cfg     LoadConfig
		data    string
		asJSON  bool
		verbose bool
	)
	fs := flag.NewFlagSet("pkgroute load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: pkgroute load [flags]")
		fmt.Fprintln(fs.Output())
		fmt.Fprintln(fs.Output(), "Opens -c connections to -url and keeps -k requests in flight on each for -duration")
		fmt.Fprintln(fs.Output(), "(or -n requests in all), then reports throughput, latency percentiles, errors by status")
		fmt.Fprintln(fs.Output(), "and close code, and with -pid the server's CPU time per request and memory.")
		fmt.Fprintln(fs.Output(), "With -idle it opens and authenticates the connections, holds them for -duration and")
		fmt.Fprintln(fs.Output(), "reports the server's memory and goroutines per connection.")
		fmt.Fprintln(fs.Output(), "Only loopback targets are reached unless -allow-remote.")
		fmt.Fprintln(fs.Output())
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.URL, "url", "ws://127.0.0.1:8000/web", "WebSocket endpoint")
	fs.StringVar(&cfg.Protocol, "protocol", ProtocolPkgroute, "wire protocol: pkgroute or centrifuge (JSON: connect, then rpc)")
	fs.StringVar(&cfg.Auth, "auth", AuthHeader, "authentication: header (Authorization at upgrade), first-message (auth frame or connect token) or none")
	fs.StringVar(&cfg.Token, "token", "", "bearer token; empty: log in at -login-url with -user and -password")
	fs.StringVar(&cfg.LoginURL, "login-url", "", "login endpoint (POST {\"username\",\"password\"}); default http://<url host>/auth/login")
	fs.StringVar(&cfg.User, "user", DefaultUser, "login user")
	fs.StringVar(&cfg.Password, "password", DefaultPassword, "login password")
	fs.BoolVar(&cfg.Idle, "idle", false, "idle mode: hold authenticated connections for -duration, send nothing")
	fs.IntVar(&cfg.Conns, "c", 1, "connections")
	fs.IntVar(&cfg.InFlight, "k", 1, "requests in flight per connection")
	fs.DurationVar(&cfg.Duration, "duration", DefaultDuration, fmt.Sprintf("how long to send (idle: to hold); at most %s", MaxDuration))
	fs.Int64Var(&cfg.Requests, "n", 0, "stop after this many requests in all (0: until -duration, which always applies)")
	fs.Int64Var(&cfg.PkgID, "pkg", DefaultPkgID, "pkg_id of the requests (pkgroute)")
	fs.StringVar(&cfg.Method, "method", "", "rpc method (centrifuge)")
	fs.StringVar(&data, "data", "{}", "JSON object sent as data")
	fs.IntVar(&cfg.Size, "size", 0, "add a string member \"pad\" of this many bytes to the data")
	fs.IntVar(&cfg.PID, "pid", 0, "server process id: sample its CPU time and RSS from /proc")
	fs.StringVar(&cfg.MetricsURL, "metrics-url", "", "Prometheus endpoint read for go_goroutines in idle mode; default http://<url host>/metrics")
	fs.BoolVar(&cfg.AllowRemote, "allow-remote", false, "allow targets that are not loopback addresses")
	fs.IntVar(&cfg.DialConcurrency, "dial-concurrency", DefaultDialConcurrency, "connections opened at once")
	fs.DurationVar(&cfg.DialTimeout, "dial-timeout", DefaultDialTimeout, "bound of one connection's dial and authentication")
	fs.DurationVar(&cfg.SetupTimeout, "setup-timeout", DefaultSetupTimeout, "bound of opening all connections")
	fs.DurationVar(&cfg.DrainTimeout, "drain", DefaultDrainTimeout, "how long replies are awaited once sending stopped")
	fs.IntVar(&cfg.SourceAddrs, "sources", 0, "spread connections over source addresses 127.0.0.1..127.0.0.N (0: one per 5,000 connections)")
	fs.BoolVar(&asJSON, "json", false, "print the report as JSON")
	fs.BoolVar(&verbose, "v", false, "print progress to stderr")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "pkgroute load: unexpected arguments: %q\n", fs.Args())
		return 2
	}
	if cfg.Conns < 1 || cfg.InFlight < 1 {
		fmt.Fprintln(stderr, "pkgroute load: -c and -k must be at least 1")
		return 2
	}
	cfg.Data = json.RawMessage(data)
	if verbose {
		cfg.Logf = func(format string, args ...any) { fmt.Fprintf(stderr, "pkgroute load: "+format+"\n", args...) }
	}
	rep, err := RunLoad(ctx, cfg)
	if errors.Is(err, ErrInvalidConfig) {
		fmt.Fprintln(stderr, "pkgroute", err)
		return 2
	}
	if rep != nil {
		if asJSON {
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			_ = enc.Encode(rep)
		} else {
			_ = rep.WriteText(stdout)
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, "pkgroute", err)
		return 1
	}
	return 0
}

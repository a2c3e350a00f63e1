// Command compare is the side-by-side harness: it builds the load tool
// (cmd/pkgroute), the example app (examples/authorsvc) and the bench
// servers, starts each server as its own process on a free loopback port,
// drives them with `pkgroute load` in interleaved rounds and prints the
// medians of the rounds and their ratios to the raw gorilla echo and to
// the centrifuge RPC echo.
//
// Run it from the bench directory:
//
//	go run ./cmd/compare                      # defaults: 3 rounds, every scenario
//	go run ./cmd/compare -rounds 5 -duration 5s -scenarios 1x1,50x4
//
// Servers: raw (cmd/rawecho), centrifuge (cmd/centrifugeecho), pkgroute
// (the example's PING, pkg_id 10, auditing off) and pkgroute-audit (the
// same with AUDIT_LOG_ENABLED=true, SQLite in a temporary directory).
// Scenarios: CxK (C connections with K requests in flight each, for
// -duration) and idleN (N authenticated connections held for -hold; a
// fresh server process for each measurement, so that its RSS growth is
// the connections').
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "compare:", err)
		os.Exit(1)
	}
}

type options struct {
	root, out          string
	rounds             int
	duration, hold     time.Duration
	warmup             time.Duration
	scenarios, servers []string
	verbose            bool
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var o options
	var scenarios, servers string
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.root, "root", "..", "root of the pkgroute repository")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds (medians are taken over them)")
	fs.DurationVar(&o.duration, "duration", 3*time.Second, "length of each load run")
	fs.DurationVar(&o.hold, "hold", 3*time.Second, "how long idle connections are held")
	fs.DurationVar(&o.warmup, "warmup", time.Second, "unrecorded load run on each freshly started server (0: none)")
	fs.StringVar(&scenarios, "scenarios", "1x1,50x4,500x1,idle2000,idle10000", "comma list: CxK (connections x in flight) or idleN")
	fs.StringVar(&servers, "servers", "raw,centrifuge,pkgroute,pkgroute-audit", "comma list of servers")
	fs.StringVar(&o.out, "json", "", "also write every run's report to this file")
	fs.BoolVar(&o.verbose, "v", false, "print progress")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if o.rounds < 1 || o.rounds > 50 {
		return fmt.Errorf("-rounds must be 1..50")
	}
	if o.duration <= 0 || o.duration > 5*time.Minute || o.hold <= 0 || o.hold > 5*time.Minute || o.warmup < 0 || o.warmup > time.Minute {
		return fmt.Errorf("-duration and -hold must be above 0 and at most 5m, -warmup at most 1m")
	}
	o.scenarios, o.servers = splitList(scenarios), splitList(servers)
	scens, err := parseScenarios(o.scenarios)
	if err != nil {
		return err
	}
	var specs []serverSpec
	for _, name := range o.servers {
		s, ok := knownServers[name]
		if !ok {
			return fmt.Errorf("unknown server %q (known: raw, centrifuge, pkgroute, pkgroute-audit)", name)
		}
		specs = append(specs, s)
	}
	if len(specs) == 0 || len(scens) == 0 {
		return fmt.Errorf("nothing to run")
	}
	root, err := filepath.Abs(o.root)
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(root, "examples", "authorsvc")); err != nil {
		return fmt.Errorf("-root %s is not the pkgroute repository: %w", root, err)
	}
	benchDir, err := os.Getwd()
	if err != nil {
		return err
	}
	maxIdle := 0
	for _, s := range scens {
		if s.idle {
			maxIdle = max(maxIdle, s.conns)
		}
	}
	if err := raiseFileLimit(uint64(maxIdle+4096), stderr); err != nil {
		return err
	}

	tmp, err := os.MkdirTemp("", "pkgroute-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	h := &harness{o: o, tmp: tmp, stderr: stderr}
	h.logf("building into %s", tmp)
	for _, b := range []struct{ dir, pkg, out string }{
		{root, "./cmd/pkgroute", "pkgroute"},
		{root, "./examples/authorsvc", "authorsvc"},
		{benchDir, "./cmd/rawecho", "rawecho"},
		{benchDir, "./cmd/centrifugeecho", "centrifugeecho"},
	} {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(tmp, b.out), b.pkg)
		cmd.Dir = b.dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %v\n%s", b.pkg, err, out)
		}
	}
	h.loadBin = filepath.Join(tmp, "pkgroute")

	start := time.Now()
	var results []result
	for round := range o.rounds {
		rs, err := h.round(ctx, round, scens, specs)
		results = append(results, rs...)
		if err != nil {
			return err
		}
	}
	if o.out != "" {
		raw, _ := json.MarshalIndent(results, "", "  ")
		if err := os.WriteFile(o.out, raw, 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(stdout, "pkgroute side-by-side, %s, %s/%s, %d CPUs, %d rounds (interleaved), load runs of %s, idle holds of %s; took %s\n\n",
		time.Now().UTC().Format("2006-01-02"), runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), o.rounds, o.duration, o.hold,
		time.Since(start).Round(time.Second))
	printTables(stdout, scens, specs, results)
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// scenario is one load shape.
type scenario struct {
	name     string
	idle     bool
	conns, k int
}

func parseScenarios(names []string) ([]scenario, error) {
	var out []scenario
	for _, n := range names {
		if rest, ok := strings.CutPrefix(n, "idle"); ok {
			c, err := strconv.Atoi(rest)
			if err != nil || c < 1 || c > 50000 {
				return nil, fmt.Errorf("scenario %q: want idleN, N in 1..50000", n)
			}
			out = append(out, scenario{name: n, idle: true, conns: c})
			continue
		}
		cs, ks, ok := strings.Cut(n, "x")
		c, err1 := strconv.Atoi(cs)
		k, err2 := strconv.Atoi(ks)
		if !ok || err1 != nil || err2 != nil || c < 1 || c > 10000 || k < 1 || k > 1024 {
			return nil, fmt.Errorf("scenario %q: want CxK (e.g. 50x4) or idleN", n)
		}
		out = append(out, scenario{name: n, conns: c, k: k})
	}
	return out, nil
}

// serverSpec says how to start a server and how the load tool talks to it.
type serverSpec struct {
	name     string
	bin      string
	env      []string
	path     string // WebSocket path
	protocol string
	auth     string // load tool -auth
	ready    string // HTTP path answering 200 once started
	addrFlag bool   // -addr flag (bench servers) or HTTP_ADDR (authorsvc)
}

// authorsvcEnv turns off what would refuse a load run (per-user connection
// cap, message rate) and keeps the rest of the example's defaults.
var authorsvcEnv = []string{"WS_MAX_CONNECTIONS_PER_USER=0", "WS_MESSAGE_RATE_LIMIT=0"}

var knownServers = map[string]serverSpec{
	"raw":            {name: "raw", bin: "rawecho", path: "/web", protocol: "pkgroute", auth: "none", ready: "/metrics", addrFlag: true},
	"centrifuge":     {name: "centrifuge", bin: "centrifugeecho", path: "/connection/websocket", protocol: "centrifuge", auth: "none", ready: "/metrics", addrFlag: true},
	"pkgroute":       {name: "pkgroute", bin: "authorsvc", env: append([]string{"AUDIT_LOG_ENABLED=false"}, authorsvcEnv...), path: "/web", protocol: "pkgroute", auth: "header", ready: "/live"},
	"pkgroute-audit": {name: "pkgroute-audit", bin: "authorsvc", env: append([]string{"AUDIT_LOG_ENABLED=true"}, authorsvcEnv...), path: "/web", protocol: "pkgroute", auth: "header", ready: "/live"},
}

// result is one recorded run.
type result struct {
	Round    int             `json:"round"`
	Scenario string          `json:"scenario"`
	Server   string          `json:"server"`
	Report   json.RawMessage `json:"report"`
	parsed   report
}

// report is the part of `pkgroute load -json` the tables use.
type report struct {
	Connected  int              `json:"connected"`
	Held       int              `json:"held"`
	Sent       int64            `json:"sent"`
	Completed  int64            `json:"completed"`
	Frames     int64            `json:"frames"`
	OK         int64            `json:"ok"`
	Unanswered int64            `json:"unanswered"`
	Throughput float64          `json:"throughput_rps"`
	Statuses   map[string]int64 `json:"statuses"`
	CloseCodes map[string]int64 `json:"close_codes"`
	DialErrors map[string]int64 `json:"dial_errors"`
	Latency    *latency         `json:"latency"`
	Server     *serverFigures   `json:"server"`
}

type latency struct {
	P50 float64 `json:"p50_us"`
	P99 float64 `json:"p99_us"`
}

type serverFigures struct {
	CPUPerRequest     float64 `json:"cpu_per_request_us"`
	RSSPerConnKB      float64 `json:"rss_per_conn_kb"`
	GoroutinesPerConn float64 `json:"goroutines_per_conn"`
	GoroutinesAfter   *int64  `json:"goroutines_after"`
	Error             string  `json:"error"`
}

// clean reports whether a run had no error of any kind.
func (r *report) clean() bool {
	return len(r.Statuses) == 0 && len(r.CloseCodes) == 0 && len(r.DialErrors) == 0 && r.Unanswered == 0 &&
		(r.Server == nil || r.Server.Error == "")
}

type harness struct {
	o       options
	tmp     string
	loadBin string
	stderr  io.Writer
	started int
}

func (h *harness) logf(format string, args ...any) {
	if h.o.verbose {
		fmt.Fprintf(h.stderr, "compare: "+format+"\n", args...)
	}
}

// rotate returns specs starting at offset i, so that no server always
// runs first (or right after the same neighbour).
func rotate[T any](s []T, i int) []T {
	i %= len(s)
	return append(slices.Clone(s[i:]), s[:i]...)
}

// round runs every load scenario on one set of servers (each server in
// turn, the order rotating), then every idle scenario on a fresh process
// of each server.
func (h *harness) round(ctx context.Context, round int, scens []scenario, specs []serverSpec) ([]result, error) {
	var out []result
	var loads, idles []scenario
	for _, s := range scens {
		if s.idle {
			idles = append(idles, s)
		} else {
			loads = append(loads, s)
		}
	}
	if len(loads) > 0 {
		procs := map[string]*proc{}
		defer func() {
			for _, p := range procs {
				p.stop()
			}
		}()
		for _, spec := range rotate(specs, round) {
			p, err := h.start(ctx, spec)
			if err != nil {
				return out, err
			}
			procs[spec.name] = p
		}
		for si, s := range loads {
			for _, spec := range rotate(specs, round+si) {
				r, err := h.measure(ctx, procs[spec.name], s, round)
				if err != nil {
					return out, err
				}
				out = append(out, r)
			}
		}
		for name, p := range procs {
			p.stop()
			delete(procs, name)
		}
	}
	for si, s := range idles {
		for _, spec := range rotate(specs, round+si) {
			p, err := h.start(ctx, spec)
			if err != nil {
				return out, err
			}
			r, err := h.measure(ctx, p, s, round)
			p.stop()
			if err != nil {
				return out, err
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// proc is a running server.
type proc struct {
	spec   serverSpec
	cmd    *exec.Cmd
	addr   string
	exited chan error
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func (h *harness) start(ctx context.Context, spec serverSpec) (*proc, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	h.started++
	dir := filepath.Join(h.tmp, fmt.Sprintf("%s-%d", spec.name, h.started))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var cmd *exec.Cmd
	if spec.addrFlag {
		cmd = exec.Command(filepath.Join(h.tmp, spec.bin), "-addr", addr)
	} else {
		cmd = exec.Command(filepath.Join(h.tmp, spec.bin))
	}
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), spec.env...)
	cmd.Env = append(cmd.Env, "HTTP_ADDR="+addr, "DATABASE_URL=sqlite:"+filepath.Join(dir, "bench.db"))
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{spec: spec, cmd: cmd, addr: addr, exited: make(chan error, 1)}
	go func() { p.exited <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for {
		res, err := client.Get("http://" + addr + spec.ready)
		if err == nil {
			_ = res.Body.Close()
			if res.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-p.exited:
			p.exited <- err
			log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			return nil, fmt.Errorf("%s exited during start-up: %v\n%s", spec.name, err, log)
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("%s did not answer %s within 60 s", spec.name, spec.ready)
		}
	}
	h.logf("started %s (pid %d) on %s", spec.name, cmd.Process.Pid, addr)
	if h.o.warmup > 0 {
		if _, err := h.load(ctx, p, []string{"-c", "4", "-k", "4", "-duration", h.o.warmup.String()}); err != nil {
			p.stop()
			return nil, fmt.Errorf("warm-up of %s: %w", spec.name, err)
		}
	}
	return p, nil
}

// stop ends the server with SIGTERM, then SIGKILL after 10 s.
func (p *proc) stop() {
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// load runs the load tool against p with extra flags and returns its JSON
// report.
func (h *harness) load(ctx context.Context, p *proc, extra []string) ([]byte, error) {
	args := []string{"load", "-json",
		"-url", "ws://" + p.addr + p.spec.path,
		"-protocol", p.spec.protocol, "-auth", p.spec.auth,
		"-pid", strconv.Itoa(p.cmd.Process.Pid)}
	args = append(args, extra...)
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, h.loadBin, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("pkgroute %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

func (h *harness) measure(ctx context.Context, p *proc, s scenario, round int) (result, error) {
	var extra []string
	if s.idle {
		extra = []string{"-idle", "-c", strconv.Itoa(s.conns), "-duration", h.o.hold.String(),
			"-dial-concurrency", "64", "-setup-timeout", "5m"}
	} else {
		extra = []string{"-c", strconv.Itoa(s.conns), "-k", strconv.Itoa(s.k), "-duration", h.o.duration.String()}
	}
	raw, err := h.load(ctx, p, extra)
	r := result{Round: round + 1, Scenario: s.name, Server: p.spec.name, Report: raw}
	if err != nil && len(raw) == 0 {
		return r, err
	}
	if jerr := json.Unmarshal(raw, &r.parsed); jerr != nil {
		return r, errors.Join(err, jerr)
	}
	if !r.parsed.clean() {
		fmt.Fprintf(h.stderr, "compare: round %d %s %s: errors: statuses %v, closes %v, dial %v, unanswered %d\n",
			round+1, s.name, p.spec.name, r.parsed.Statuses, r.parsed.CloseCodes, r.parsed.DialErrors, r.parsed.Unanswered)
	}
	h.logf("round %d %-10s %-15s %s", round+1, s.name, p.spec.name, summary(s, &r.parsed))
	return r, nil
}

func summary(s scenario, r *report) string {
	if s.idle {
		if r.Server == nil {
			return fmt.Sprintf("held %d", r.Held)
		}
		return fmt.Sprintf("held %d, %.1f KB/conn, %.2f goroutines/conn", r.Held, r.Server.RSSPerConnKB, r.Server.GoroutinesPerConn)
	}
	out := fmt.Sprintf("%.0f req/s", r.Throughput)
	if r.Latency != nil {
		out += fmt.Sprintf(", p50 %.0f µs, p99 %.0f µs", r.Latency.P50, r.Latency.P99)
	}
	if r.Server != nil {
		out += fmt.Sprintf(", cpu %.2f µs/req", r.Server.CPUPerRequest)
	}
	return out
}

// raiseFileLimit raises the soft limit of open files to at least need
// (up to the hard limit); the servers and the load tool inherit it.
func raiseFileLimit(need uint64, stderr io.Writer) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return err
	}
	if lim.Cur >= need {
		return nil
	}
	lim.Cur = min(max(need, lim.Cur), lim.Max)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("raising the open files limit to %d: %w", lim.Cur, err)
	}
	if lim.Cur < need {
		fmt.Fprintf(stderr, "compare: open files limited to %d (hard limit); the largest idle scenario needs about %d\n", lim.Cur, need)
	}
	return nil
}

package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"strings"
)

// median of the values; NaN when there are none.
func median(v []float64) float64 {
	if len(v) == 0 {
		return math.NaN()
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// metric extracts one figure of a report; ok false leaves it out.
type metric func(r *report) (float64, bool)

var (
	throughput = func(r *report) (float64, bool) { return r.Throughput, r.Completed > 0 }
	perFrame   = func(r *report) (float64, bool) {
		return float64(r.Completed) / float64(r.Frames), r.Frames > 0
	}
	p50       = func(r *report) (float64, bool) { return lat(r, false) }
	p99       = func(r *report) (float64, bool) { return lat(r, true) }
	cpuPerReq = func(r *report) (float64, bool) {
		return srv(r, func() float64 { return r.Server.CPUPerRequest })
	}
	rssPerConn = func(r *report) (float64, bool) {
		return srv(r, func() float64 { return r.Server.RSSPerConnKB })
	}
	goroutinesPerConn = func(r *report) (float64, bool) {
		if r.Server == nil || r.Server.GoroutinesAfter == nil {
			return 0, false
		}
		return r.Server.GoroutinesPerConn, true
	}
)

func lat(r *report, p99 bool) (float64, bool) {
	if r.Latency == nil {
		return 0, false
	}
	if p99 {
		return r.Latency.P99, true
	}
	return r.Latency.P50, true
}

func srv(r *report, f func() float64) (float64, bool) {
	if r.Server == nil || r.Server.Error != "" {
		return 0, false
	}
	return f(), true
}

// medianOf returns the median of m over the runs of one scenario and
// server, and how many of those runs had errors.
func medianOf(results []result, scen, server string, m metric) (float64, int) {
	var v []float64
	dirty := 0
	for i := range results {
		r := &results[i]
		if r.Scenario != scen || r.Server != server {
			continue
		}
		if !r.parsed.clean() {
			dirty++
		}
		if x, ok := m(&r.parsed); ok {
			v = append(v, x)
		}
	}
	return median(v), dirty
}

func num(v float64, prec int) string {
	if math.IsNaN(v) {
		return "-"
	}
	return fmt.Sprintf("%.*f", prec, v)
}

func ratio(a, b float64) string {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

// printTables writes one Markdown table per scenario: medians of the
// rounds, and ratios to raw and to centrifuge where those ran.
func printTables(w io.Writer, scens []scenario, specs []serverSpec, results []result) {
	has := func(name string) bool {
		return slices.ContainsFunc(specs, func(s serverSpec) bool { return s.name == name })
	}
	for _, s := range scens {
		if s.idle {
			fmt.Fprintf(w, "### idle %d: connections opened, authenticated and held (medians)\n\n", s.conns)
			fmt.Fprintln(w, "| server | RSS/conn KB | goroutines/conn | RSS vs raw | RSS vs centrifuge |")
			fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: |")
			rawRSS, _ := medianOf(results, s.name, "raw", rssPerConn)
			cfRSS, _ := medianOf(results, s.name, "centrifuge", rssPerConn)
			for _, sp := range specs {
				rss, dirty := medianOf(results, s.name, sp.name, rssPerConn)
				g, _ := medianOf(results, s.name, sp.name, goroutinesPerConn)
				fmt.Fprintf(w, "| %s%s | %s | %s | %s | %s |\n", sp.name, mark(dirty), num(rss, 1), num(g, 2),
					cond(has("raw"), ratio(rss, rawRSS)), cond(has("centrifuge"), ratio(rss, cfRSS)))
			}
			fmt.Fprintln(w)
			continue
		}
		fmt.Fprintf(w, "### %d x %d: %s, %s in flight on each (medians)\n\n", s.conns, s.k, plural(s.conns, "connection"), plural(s.k, "request"))
		fmt.Fprintln(w, "| server | req/s | p50 µs | p99 µs | server CPU µs/req | replies/msg | req/s vs raw | p50 vs raw | p99 vs raw | req/s vs centrifuge | CPU/req vs centrifuge |")
		fmt.Fprintln(w, "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
		base := func(name string, m metric) float64 { v, _ := medianOf(results, s.name, name, m); return v }
		rawT, rawP50, rawP99 := base("raw", throughput), base("raw", p50), base("raw", p99)
		cfT, cfCPU := base("centrifuge", throughput), base("centrifuge", cpuPerReq)
		for _, sp := range specs {
			t, dirty := medianOf(results, s.name, sp.name, throughput)
			l50, l99, cpu, pf := base(sp.name, p50), base(sp.name, p99), base(sp.name, cpuPerReq), base(sp.name, perFrame)
			fmt.Fprintf(w, "| %s%s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", sp.name, mark(dirty),
				num(t, 0), num(l50, 0), num(l99, 0), num(cpu, 2), num(pf, 2),
				cond(has("raw"), ratio(t, rawT)), cond(has("raw"), ratio(l50, rawP50)), cond(has("raw"), ratio(l99, rawP99)),
				cond(has("centrifuge"), ratio(t, cfT)), cond(has("centrifuge"), ratio(cpu, cfCPU)))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintln(w, strings.TrimSpace(`
Medians over the rounds; ratios are of those medians. replies/msg: replies per WebSocket
message the load tool read (above 1 when a server gathers replies into one message).
A server marked * had errors (non-zero statuses, closes, refused connections or
unanswered requests) in some round: see the messages above the tables.`))
}

func mark(dirty int) string {
	if dirty > 0 {
		return fmt.Sprintf(" *(%d)", dirty)
	}
	return ""
}

func cond(ok bool, s string) string {
	if !ok {
		return "-"
	}
	return s
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

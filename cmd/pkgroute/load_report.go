package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
)

// LoadReport is the outcome of a run. Counts cover the whole run; the JSON
// names are stable for scripts (bench/ reads them).
type LoadReport struct {
	// Mode is "load" or "idle".
	Mode string `json:"mode"`
	// Protocol is the wire protocol spoken.
	Protocol string `json:"protocol"`
	// URL is the endpoint.
	URL string `json:"url"`
	// Conns is the number of connections asked for; Connected those
	// opened and authenticated.
	Conns     int `json:"conns"`
	Connected int `json:"connected"`
	// Held is, in idle mode, the connections still open at the end of the
	// hold.
	Held int `json:"held,omitempty"`
	// InFlight is the requests in flight per connection (load mode).
	InFlight int `json:"in_flight,omitempty"`
	// PkgID is the package of the requests (pkgroute protocol).
	PkgID int64 `json:"pkg_id,omitempty"`
	// DurationSeconds is the configured bound (load) or hold (idle).
	DurationSeconds float64 `json:"duration_s"`
	// ElapsedSeconds is the time from the first request to the last reply.
	ElapsedSeconds float64 `json:"elapsed_s,omitempty"`
	// Sent is the number of requests written.
	Sent int64 `json:"sent"`
	// Completed is the number of replies matched with a request, whatever
	// their status; OK those with status 0.
	Completed int64 `json:"completed"`
	OK        int64 `json:"ok"`
	// Unanswered counts requests whose reply never came (the connection
	// ended, or the drain timeout passed).
	Unanswered int64 `json:"unanswered"`
	// Unmatched counts replies whose id matched no request in flight.
	Unmatched int64 `json:"unmatched"`
	// Frames counts the WebSocket messages read after the handshakes: a
	// server that gathers several replies in one message (centrifuge's
	// JSON protocol does) reads fewer frames than replies.
	Frames int64 `json:"frames"`
	// Throughput is Completed per second of ElapsedSeconds.
	Throughput float64 `json:"throughput_rps"`
	// Latency of the completed requests, from write to reply.
	Latency *Latency `json:"latency,omitempty"`
	// Statuses counts the replies with a non-zero status code, by code
	// (centrifuge error replies count as 1).
	Statuses map[int]int64 `json:"statuses,omitempty"`
	// ErrorCodes counts the error replies by error code (data.code, or
	// centrifuge_<code>).
	ErrorCodes map[string]int64 `json:"error_codes,omitempty"`
	// CloseCodes counts the connections the server closed (or that
	// broke: 1006), by close code.
	CloseCodes map[int]int64 `json:"close_codes,omitempty"`
	// DialErrors counts the connections that could not be opened or
	// authenticated, by cause ("http 401", "close 4001", "dial: timeout").
	DialErrors map[string]int64 `json:"dial_errors,omitempty"`
	// FirstDialError is the first such error in full.
	FirstDialError string `json:"first_dial_error,omitempty"`
	// Server holds the figures of the server process, when sampled.
	Server *ServerStats `json:"server,omitempty"`
}

// Latency holds percentiles in microseconds.
type Latency struct {
	P50  float64 `json:"p50_us"`
	P90  float64 `json:"p90_us"`
	P99  float64 `json:"p99_us"`
	Max  float64 `json:"max_us"`
	Mean float64 `json:"mean_us"`
}

// ServerStats are the server's figures, sampled before and after the
// request phase (load) or before the connections and at the end of the
// hold (idle).
type ServerStats struct {
	// PID is the process sampled (0: only the metrics were read).
	PID int `json:"pid,omitempty"`
	// CPUSeconds is the user + system CPU time between the samples.
	CPUSeconds float64 `json:"cpu_s"`
	// CPUPerRequestMicros is CPUSeconds per completed request (load).
	CPUPerRequestMicros float64 `json:"cpu_per_request_us,omitempty"`
	// RSSBeforeKB and RSSAfterKB are the resident set sizes.
	RSSBeforeKB int64 `json:"rss_before_kb,omitempty"`
	RSSAfterKB  int64 `json:"rss_after_kb,omitempty"`
	// RSSPerConnKB is the RSS growth per held connection (idle).
	RSSPerConnKB float64 `json:"rss_per_conn_kb,omitempty"`
	// GoroutinesBefore and GoroutinesAfter are go_goroutines from the
	// metrics endpoint (idle), when it answered.
	GoroutinesBefore *int64 `json:"goroutines_before,omitempty"`
	GoroutinesAfter  *int64 `json:"goroutines_after,omitempty"`
	// GoroutinesPerConn is their growth per held connection.
	GoroutinesPerConn float64 `json:"goroutines_per_conn,omitempty"`
	// Error says why the process could not be sampled.
	Error string `json:"error,omitempty"`
}

// WriteText writes the report for people.
func (r *LoadReport) WriteText(w io.Writer) error {
	var b strings.Builder
	if r.Mode == "idle" {
		fmt.Fprintf(&b, "idle %s (%s): %d connections held for %s\n", r.URL, r.Protocol, r.Conns, secs(r.DurationSeconds))
		fmt.Fprintf(&b, "  connected   %d/%d, still open after the hold %d\n", r.Connected, r.Conns, r.Held)
	} else {
		what := "rpc"
		if r.Protocol == ProtocolPkgroute {
			what = fmt.Sprintf("pkg_id %d", r.PkgID)
		}
		fmt.Fprintf(&b, "load %s (%s, %s): %d connections x %d in flight, up to %s\n",
			r.URL, r.Protocol, what, r.Conns, r.InFlight, secs(r.DurationSeconds))
		fmt.Fprintf(&b, "  connected   %d/%d\n", r.Connected, r.Conns)
		fmt.Fprintf(&b, "  requests    sent %d, completed %d (ok %d), unanswered %d, unmatched replies %d\n",
			r.Sent, r.Completed, r.OK, r.Unanswered, r.Unmatched)
		fmt.Fprintf(&b, "  throughput  %.1f req/s over %s (%d messages read)\n", r.Throughput, secs(r.ElapsedSeconds), r.Frames)
		if l := r.Latency; l != nil {
			fmt.Fprintf(&b, "  latency     p50 %s  p90 %s  p99 %s  max %s  (mean %s)\n",
				us(l.P50), us(l.P90), us(l.P99), us(l.Max), us(l.Mean))
		}
	}
	var errs []string
	for _, k := range slices.Sorted(maps.Keys(r.Statuses)) {
		errs = append(errs, fmt.Sprintf("status %d: %d", k, r.Statuses[k]))
	}
	for _, k := range slices.Sorted(maps.Keys(r.ErrorCodes)) {
		errs = append(errs, fmt.Sprintf("%s: %d", k, r.ErrorCodes[k]))
	}
	for _, k := range slices.Sorted(maps.Keys(r.CloseCodes)) {
		errs = append(errs, fmt.Sprintf("close %d: %d", k, r.CloseCodes[k]))
	}
	for _, k := range slices.Sorted(maps.Keys(r.DialErrors)) {
		errs = append(errs, fmt.Sprintf("%s: %d", k, r.DialErrors[k]))
	}
	if len(errs) == 0 {
		errs = []string{"none"}
	}
	fmt.Fprintf(&b, "  errors      %s\n", strings.Join(errs, "; "))
	if r.FirstDialError != "" {
		fmt.Fprintf(&b, "  first dial error: %s\n", r.FirstDialError)
	}
	if s := r.Server; s != nil {
		switch {
		case s.Error != "":
			fmt.Fprintf(&b, "  server      pid %d: %s\n", s.PID, s.Error)
		case s.PID > 0 && r.Mode == "idle":
			fmt.Fprintf(&b, "  server      pid %d: rss %s -> %s, %.1f KB per connection, cpu %.2f s\n",
				s.PID, kb(s.RSSBeforeKB), kb(s.RSSAfterKB), s.RSSPerConnKB, s.CPUSeconds)
		case s.PID > 0:
			fmt.Fprintf(&b, "  server      pid %d: cpu %.2f s, %.2f µs per request; rss %s -> %s\n",
				s.PID, s.CPUSeconds, s.CPUPerRequestMicros, kb(s.RSSBeforeKB), kb(s.RSSAfterKB))
		}
		if s.GoroutinesBefore != nil && s.GoroutinesAfter != nil {
			fmt.Fprintf(&b, "  goroutines  %d -> %d, %.2f per connection\n", *s.GoroutinesBefore, *s.GoroutinesAfter, s.GoroutinesPerConn)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func secs(s float64) string { return fmt.Sprintf("%.2fs", s) }

func us(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fs", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.2fms", v/1e3)
	default:
		return fmt.Sprintf("%.0fµs", v)
	}
}

func kb(v int64) string { return fmt.Sprintf("%.1f MB", float64(v)/1024) }

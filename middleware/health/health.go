package health

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// Statuses reported for the service and for each check.
const (
	StatusHealthy   = "healthy"
	StatusUnhealthy = "unhealthy"
	StatusDisabled  = "disabled"
)

// DefaultTimeout bounds a round of checks when Config.Timeout is zero.
const DefaultTimeout = 2 * time.Second

// Field is an extra member of a check's entry, such as the WebSocket
// endpoint's active_connections.
type Field struct {
	// Key is the member name.
	Key string
	// Value is encoded with encoding/json.
	Value any
}

// Check is one named dependency check.
type Check struct {
	// Name is the check's key in the body ("database", "redis", ...).
	Name string
	// Func reports the dependency's health: nil means healthy. It must
	// return soon after ctx ends. A nil Func marks a dependency that is
	// not configured: it is reported as "disabled" and does not affect the
	// overall status.
	Func func(ctx context.Context) error
	// Fields, when set, turns the entry into an object
	// {"status": ..., <fields in order>}; it runs after Func.
	Fields func() []Field
}

// Config configures [New].
type Config struct {
	// Checks in the order of the body.
	Checks []Check
	// Timeout bounds one round of checks; a check still running then is
	// unhealthy. Zero means DefaultTimeout.
	Timeout time.Duration
	// Logger receives the errors of failing checks (never sent to the
	// client); nil discards them.
	Logger *slog.Logger
}

// Handler is the readiness handler.
type Handler struct {
	checks  []Check
	timeout time.Duration
	logger  *slog.Logger
}

// New returns a readiness handler for cfg. It panics when two checks share
// a name or a check is named "status": the body could not tell them apart.
func New(cfg Config) *Handler {
	seen := map[string]bool{"status": true}
	for _, c := range cfg.Checks {
		if seen[c.Name] || c.Name == "" {
			panic("health: check name " + strconv.Quote(c.Name) + " is empty, reserved or used twice")
		}
		seen[c.Name] = true
	}
	h := &Handler{checks: cfg.Checks, timeout: cfg.Timeout, logger: cfg.Logger}
	if h.timeout <= 0 {
		h.timeout = DefaultTimeout
	}
	if h.logger == nil {
		h.logger = slog.New(slog.DiscardHandler)
	}
	return h
}

// Result is the outcome of one check.
type Result struct {
	// Name of the check.
	Name string
	// Status is StatusHealthy, StatusUnhealthy or StatusDisabled.
	Status string
	// Err is what the check returned (or the timeout); never sent.
	Err error
	// Fields are the check's extra members.
	Fields []Field
}

// Report is the outcome of one round of checks. It marshals to the wire
// body, keys in order.
type Report struct {
	// Status is StatusHealthy exactly when every enabled check is healthy.
	Status string
	// Results in the order of Config.Checks.
	Results []Result
}

// Healthy reports whether the overall status is healthy.
func (r Report) Healthy() bool { return r.Status == StatusHealthy }

// MarshalJSON encodes {"status":..., "<name>": status or {"status":..., fields...}, ...}.
func (r Report) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(`{"status":`)
	_ = writeJSON(&b, r.Status)
	for _, res := range r.Results {
		b.WriteByte(',')
		_ = writeJSON(&b, res.Name)
		b.WriteByte(':')
		if res.Fields == nil {
			_ = writeJSON(&b, res.Status)
			continue
		}
		b.WriteString(`{"status":`)
		_ = writeJSON(&b, res.Status)
		for _, f := range res.Fields {
			b.WriteByte(',')
			_ = writeJSON(&b, f.Key)
			b.WriteByte(':')
			if err := writeJSON(&b, f.Value); err != nil {
				return nil, err
			}
		}
		b.WriteByte('}')
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func writeJSON(b *bytes.Buffer, v any) error {
	j, err := json.Marshal(v)
	if err != nil {
		return err
	}
	b.Write(j)
	return nil
}

type outcome struct {
	i   int
	err error
}

// Check runs the enabled checks concurrently and returns their report once
// all have answered or the timeout has passed. A check that ignores its
// context keeps running in the background until it returns; its late
// answer is dropped.
func (h *Handler) Check(ctx context.Context) Report {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	rep := Report{Status: StatusHealthy, Results: make([]Result, len(h.checks))}
	results := make(chan outcome, len(h.checks)) // buffered: late checks never block
	pending := 0
	for i, c := range h.checks {
		rep.Results[i] = Result{Name: c.Name, Status: StatusDisabled}
		if c.Func == nil {
			continue
		}
		pending++
		go func() { results <- outcome{i, c.Func(ctx)} }()
	}
	answered := make([]bool, len(h.checks))
wait:
	for ; pending > 0; pending-- {
		select {
		case o := <-results:
			answered[o.i] = true
			rep.Results[o.i].Err = o.err
		case <-ctx.Done():
			for i, c := range h.checks {
				if c.Func != nil && !answered[i] {
					rep.Results[i].Err = ctx.Err()
				}
			}
			break wait
		}
	}
	for i, c := range h.checks {
		res := &rep.Results[i]
		if c.Func != nil {
			res.Status = StatusHealthy
			if res.Err != nil {
				res.Status = StatusUnhealthy
				rep.Status = StatusUnhealthy
				h.logger.LogAttrs(ctx, slog.LevelWarn, "health check failed",
					slog.String("check", c.Name), slog.Any("error", res.Err))
			}
		}
		if c.Fields != nil {
			res.Fields = c.Fields()
		}
	}
	return rep
}

// ServeHTTP answers the report: 200 when healthy, 503 otherwise.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rep := h.Check(r.Context())
	status := http.StatusOK
	if !rep.Healthy() {
		status = http.StatusServiceUnavailable
	}
	body, err := rep.MarshalJSON()
	if err != nil {
		h.logger.LogAttrs(r.Context(), slog.LevelError, "health report encoding failed", slog.Any("error", err))
		status = http.StatusServiceUnavailable
		body = []byte(`{"status":"unhealthy"}`)
	}
	writeBody(w, status, body)
}

func writeBody(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

// Live returns the liveness handler: 200 {"status":"alive"}, touching no
// dependency.
func Live() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeBody(w, http.StatusOK, []byte(`{"status":"alive"}`))
	})
}

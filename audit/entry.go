package audit

import (
	"encoding/json"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Outcome is the result of an audited action.
type Outcome string

// The outcomes.
const (
	Success          Outcome = "success"
	Error            Outcome = "error"
	PermissionDenied Outcome = "permission_denied"
	RateLimited      Outcome = "rate_limited"
)

// Action types of WebSocket connection events, for applications that audit
// them (the package actions are "WS:<PKG_NAME>").
const (
	ActionWSConnect    = "WS:CONNECT"
	ActionWSAuthFailed = "WS:AUTH_FAILED"
	ActionWSDisconnect = "WS:DISCONNECT"
)

// Entry is one audited action. Its JSON form is the item of an audit log
// listing.
type Entry struct {
	// ID identifies the entry. Log assigns a time-ordered UUID when it is
	// zero; sinks ignore an id they already hold.
	ID uuid.UUID `json:"id"`
	// Timestamp is when the action happened, in UTC with microsecond
	// precision. Log sets it to the current time when it is zero.
	Timestamp time.Time `json:"timestamp"`
	// UserID, Username and UserRoles describe the caller; empty for
	// anonymous callers.
	UserID    string   `json:"user_id"`
	Username  string   `json:"username"`
	UserRoles []string `json:"user_roles"`
	// ActionType is "WS:<PKG_NAME>", "HTTP:<METHOD>", "HTTP:<PKG_NAME>" or
	// defined by the application.
	ActionType string `json:"action_type"`
	// Resource is what the action applies to: a route pattern, a path, a
	// pkg_id.
	Resource string `json:"resource"`
	// Outcome is the result; Log sets Success when it is empty.
	Outcome Outcome `json:"outcome"`
	// IPAddress, UserAgent and RequestID describe the request.
	IPAddress string `json:"ip_address"`
	UserAgent string `json:"user_agent"`
	RequestID string `json:"request_id"`
	// RequestData is the request's data as JSON, redacted by Log.
	RequestData json.RawMessage `json:"request_data"`
	// ResponseStatus is the HTTP status or the package status_code; nil
	// when there is none.
	ResponseStatus *int `json:"response_status"`
	// ErrorMessage describes a failure (never internal details).
	ErrorMessage string `json:"error_message"`
	// DurationMS is how long the action took, in milliseconds.
	DurationMS float64 `json:"duration_ms"`

	// Seq, PrevHash and Hash are the entry's place in the hash chain; zero
	// when the Logger does not chain entries.
	Seq      int64  `json:"seq,omitempty"`
	PrevHash string `json:"prev_hash,omitempty"`
	Hash     string `json:"hash,omitempty"`
}

// Status returns a pointer to status, for Entry.ResponseStatus.
func Status(status int) *int { return &status }

// Duration converts d to milliseconds with microsecond precision, for
// Entry.DurationMS.
func Duration(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Limits applied by Log to keep rows bounded.
const (
	maxText        = 2048      // free-text fields (resource, user agent, error message, ...)
	maxRequestData = 16 * 1024 // encoded request data
)

// normalize fills the defaults of e and makes every field storable: valid
// UTF-8 without NUL bytes, bounded lengths, redacted request data, no
// tokens. It runs in Log, before the entry is queued.
func (e *Entry) normalize(r *Redactor, now time.Time) {
	if e.ID == uuid.Nil {
		id, err := uuid.NewV7()
		if err != nil {
			id = uuid.New()
		}
		e.ID = id
	}
	if e.Timestamp.IsZero() {
		e.Timestamp = now
	}
	e.Timestamp = e.Timestamp.UTC().Truncate(time.Microsecond)
	if e.Outcome == "" {
		e.Outcome = Success
	}
	e.UserID = r.Text(clean(e.UserID))
	e.Username = r.Text(clean(e.Username))
	if e.UserRoles != nil {
		roles := make([]string, len(e.UserRoles))
		for i, role := range e.UserRoles {
			roles[i] = r.Text(clean(role))
		}
		e.UserRoles = roles
	}
	e.ActionType = r.Text(clean(e.ActionType))
	e.Resource = r.Text(clean(e.Resource))
	e.Outcome = Outcome(r.Text(clean(string(e.Outcome))))
	e.IPAddress = r.Text(clean(e.IPAddress))
	e.UserAgent = r.Text(clean(e.UserAgent))
	e.RequestID = r.Text(clean(e.RequestID))
	e.ErrorMessage = r.Text(clean(e.ErrorMessage))
	if math.IsNaN(e.DurationMS) || math.IsInf(e.DurationMS, 0) {
		e.DurationMS = 0
	}
	if st := e.ResponseStatus; st != nil && (*st > math.MaxInt32 || *st < math.MinInt32) {
		// An INTEGER column holds 32 bits: keep the row storable.
		e.ResponseStatus = Status(min(max(*st, math.MinInt32), math.MaxInt32))
	}
	e.RequestData = r.JSON(e.RequestData)
	if len(e.RequestData) > maxRequestData {
		e.RequestData = json.RawMessage(`{"_truncated":true}`)
	}
	e.Seq, e.PrevHash, e.Hash = 0, "", ""
}

// clean returns s as valid UTF-8 without NUL bytes, cut to maxText bytes.
func clean(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "")
	}
	if len(s) > maxText {
		cut := maxText
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return s
}

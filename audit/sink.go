package audit

import (
	"context"
	"errors"
	"log/slog"
	"strings"
)

// Sink stores batches of entries. Write must be idempotent: writing an
// entry whose ID the sink already holds is not an error and stores nothing,
// so that a batch retried after an ambiguous failure is not duplicated. An
// error means the batch may or may not be stored; the Logger retries it.
// Errors that wrap ErrRejected mean the batch can never be stored.
type Sink interface {
	Write(ctx context.Context, entries []Entry) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, entries []Entry) error

// Write calls f.
func (f SinkFunc) Write(ctx context.Context, entries []Entry) error { return f(ctx, entries) }

// ErrRejected marks a write error that retrying cannot fix (the data is
// refused). The Logger then writes the batch's entries one by one and drops
// those that are still refused, counted with reason "rejected".
var ErrRejected = errors.New("audit: entries rejected by the sink")

// rejected reports whether err means the data can never be stored:
// ErrRejected, or a database error of SQLSTATE class 22 (data exception).
func rejected(err error) bool {
	if errors.Is(err, ErrRejected) {
		return true
	}
	var st interface{ SQLState() string }
	if errors.As(err, &st) {
		return strings.HasPrefix(st.SQLState(), "22")
	}
	return false
}

// SlogSink writes each entry as one log record at level Info with the
// message "audit" and the entry's fields as attributes. A nil logger
// discards.
func SlogSink(logger *slog.Logger) Sink {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return SinkFunc(func(ctx context.Context, entries []Entry) error {
		for i := range entries {
			e := &entries[i]
			attrs := []slog.Attr{
				slog.String("id", e.ID.String()),
				slog.Time("timestamp", e.Timestamp),
				slog.String("user_id", e.UserID),
				slog.String("username", e.Username),
				slog.Any("user_roles", e.UserRoles),
				slog.String("action_type", e.ActionType),
				slog.String("resource", e.Resource),
				slog.String("outcome", string(e.Outcome)),
				slog.String("ip_address", e.IPAddress),
				slog.String("user_agent", e.UserAgent),
				slog.String("request_id", e.RequestID),
				slog.String("request_data", string(e.RequestData)),
				slog.String("error_message", e.ErrorMessage),
				slog.Float64("duration_ms", e.DurationMS),
			}
			if e.ResponseStatus != nil {
				attrs = append(attrs, slog.Int("response_status", *e.ResponseStatus))
			}
			if e.Hash != "" {
				attrs = append(attrs, slog.Int64("seq", e.Seq), slog.String("prev_hash", e.PrevHash), slog.String("hash", e.Hash))
			}
			logger.LogAttrs(ctx, slog.LevelInfo, "audit", attrs...)
		}
		return nil
	})
}

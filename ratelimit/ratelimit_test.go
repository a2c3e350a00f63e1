package ratelimit_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/pkgroute/pkgroute/internal/errkind"
	"github.com/pkgroute/pkgroute/ratelimit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestUnavailableError(t *testing.T) {
	t.Parallel()
	cause := errors.New("i/o timeout")
	err := fmt.Errorf("allow: %w", ratelimit.Unavailable(cause, 3*time.Second))
	assert.ErrorIs(t, err, ratelimit.ErrUnavailable)
	assert.ErrorIs(t, err, cause)
	assert.Equal(t, errkind.Unavailable, errkind.Of(err))
	assert.Equal(t, "service_unavailable", errkind.Of(err).Code())
	assert.Equal(t, 3*time.Second, errkind.RetryAfterOf(err))
	assert.Equal(t, ratelimit.DefaultRetryAfter, errkind.RetryAfterOf(ratelimit.Unavailable(cause, 0)))
	assert.Equal(t, "allow: rate limiter unavailable", err.Error(), "the cause is not repeated: messages reach clients")
}

func TestRate(t *testing.T) {
	t.Parallel()
	r := ratelimit.Rate{Limit: 100, Window: time.Minute, Burst: 20}
	assert.Equal(t, 120, r.Quota())
	assert.Equal(t, "100+20/1m0s", r.String())
	require.NoError(t, r.Validate())
	assert.Equal(t, ratelimit.Rate{Limit: 5, Window: time.Second}, ratelimit.PerSecond(5))
	assert.Equal(t, ratelimit.Rate{Limit: 5, Window: time.Minute}, ratelimit.PerMinute(5))
	res := ratelimit.FailOpenResult(r)
	assert.Equal(t, ratelimit.Result{Allowed: true, Limit: 120, Remaining: 119, ResetAfter: time.Minute}, res)
}

func TestParseFailMode(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]ratelimit.FailMode{"": ratelimit.FailClosed, "closed": ratelimit.FailClosed, "open": ratelimit.FailOpen} {
		got, err := ratelimit.ParseFailMode(in)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	_, err := ratelimit.ParseFailMode("ajar")
	assert.Error(t, err)
	assert.Equal(t, "open", ratelimit.FailOpen.String())
	assert.Equal(t, "closed", ratelimit.FailClosed.String())
}

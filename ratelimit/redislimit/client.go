package redislimit

import (
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultTimeout bounds each limiter call and each network operation of a
// client made by NewClient.
const DefaultTimeout = 100 * time.Millisecond

// NewClient returns a go-redis client for url (redis://, rediss:// or
// unix://) tuned for limiters: dial, read, write and pool timeouts of
// timeout (0 = DefaultTimeout) unless the URL sets them, no retries unless
// the URL sets max_retries, one dial attempt per connection, and context
// deadlines honoured. A hung Redis thus costs a caller at most about
// timeout. The caller closes the client.
func NewClient(url string, timeout time.Duration) (*redis.Client, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("redislimit: %w", err)
	}
	return redis.NewClient(ClientOptions(opt, timeout)), nil
}

// ClientOptions applies the settings of [NewClient] to opt (fields that are
// already set are kept) and returns it.
func ClientOptions(opt *redis.Options, timeout time.Duration) *redis.Options {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if opt.DialTimeout == 0 {
		opt.DialTimeout = timeout
	}
	if opt.ReadTimeout == 0 {
		opt.ReadTimeout = timeout
	}
	if opt.WriteTimeout == 0 {
		opt.WriteTimeout = timeout
	}
	if opt.PoolTimeout == 0 {
		opt.PoolTimeout = timeout
	}
	if opt.MaxRetries == 0 {
		opt.MaxRetries = -1 // no retries
	}
	if opt.DialerRetries == 0 {
		opt.DialerRetries = 1
	}
	opt.ContextTimeoutEnabled = true
	return opt
}

package redislimit

// SetPackedQuota sets the largest quota whose log is a packed string, so
// that tests reach the list form with small quotas.
func (l *Limiter) SetPackedQuota(n int) { l.packedQuota = n }

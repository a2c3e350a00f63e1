package redislimit

// SetPackedMax sets the most entries a packed log holds, so that tests reach
// the list form with short logs (0: every log is a list).
func (l *Limiter) SetPackedMax(n int) { l.packedMax = n }

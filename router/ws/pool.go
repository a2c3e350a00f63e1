package ws

import "sync"

// bufferPool keeps gorilla's write buffers between writes. Unlike a
// sync.Pool it is not emptied by every garbage collection, which matters
// at high message rates; it keeps at most max buffers.
type bufferPool struct {
	mu   sync.Mutex
	free []any
	max  int
}

// Get returns a buffer, or nil for gorilla to allocate one.
func (p *bufferPool) Get() any {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.free)
	if n == 0 {
		return nil
	}
	v := p.free[n-1]
	p.free[n-1] = nil
	p.free = p.free[:n-1]
	return v
}

// Put returns a buffer.
func (p *bufferPool) Put(v any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.free) < p.max {
		p.free = append(p.free, v)
	}
}

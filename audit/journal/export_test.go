package journal

import (
	"sync/atomic"
)

// WithFaults returns cfg whose segment files fail every Write and Sync
// with err once fail(err) is called.
func WithFaults(cfg Config) (_ Config, fail func(error)) {
	var fault atomic.Pointer[error]
	cfg.wrapFile = func(f segmentFile) segmentFile { return &faultyFile{f: f, fault: &fault} }
	return cfg, func(err error) { fault.Store(&err) }
}

type faultyFile struct {
	f     segmentFile
	fault *atomic.Pointer[error]
}

func (f *faultyFile) Write(p []byte) (int, error) {
	if err := f.fault.Load(); err != nil {
		return 0, *err
	}
	return f.f.Write(p)
}

func (f *faultyFile) Sync() error {
	if err := f.fault.Load(); err != nil {
		return *err
	}
	return f.f.Sync()
}

func (f *faultyFile) Close() error { return f.f.Close() }

// Frame sizes, for tests that cut records.
const (
	FrameHeaderSize   = frameHeaderSize
	SegmentHeaderSize = segHeaderSize
)

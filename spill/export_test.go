package spill

import "io"

// WithSink wraps the blob writer that Create's encoder writes to, so that
// tests can inject faults (ENOSPC, short writes) between Arrow and the
// bucket.
func WithSink(wrap func(io.Writer) io.Writer) Option {
	return func(o *options) { o.sink = wrap }
}

// RaceEnabled reports whether the tests run under the race detector.
func RaceEnabled() bool { return raceEnabled }

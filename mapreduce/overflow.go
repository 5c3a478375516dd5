package mapreduce

import (
	"errors"
	"fmt"
	"math/bits"
)

// ErrOverflow is wrapped by the panic of AddInt64 when a sum does not fit.
var ErrOverflow = errors.New("integer overflow")

// AddInt64 returns a+b, and panics with an error wrapping ErrOverflow
// when the sum does not fit an int64, so that a Combine that sums with it
// never wraps around. The engine turns that panic into an error of the
// row or the key whose value overflowed (see Job.Combine); a wrapped sum
// would be a wrong number in the sink with nothing to show for it.
func AddInt64(a, b int64) int64 {
	s, _ := bits.Add64(uint64(a), uint64(b), 0)
	if (a >= 0) == (b >= 0) && (int64(s) >= 0) != (a >= 0) {
		panic(fmt.Errorf("%w: %d + %d does not fit an int64", ErrOverflow, a, b))
	}
	return int64(s)
}

// overflowed returns the error of a recovered panic value that is an
// overflow (see AddInt64), or nil for any other.
func overflowed(p any) error {
	if err, ok := p.(error); ok && errors.Is(err, ErrOverflow) {
		return err
	}
	return nil
}

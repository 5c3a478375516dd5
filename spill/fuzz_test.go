package spill_test

import (
	"errors"
	"fmt"
	"os"
	"runtime/metrics"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mrengine/mr/spill"
)

// fuzzBudget is the WithMaxRecordSize of FuzzDecode: small, so that bogus
// allocations stay cheap.
const fuzzBudget = 1 << 20

// What a decoding step may allocate besides twice its budget (see the
// package doc's Memory section): its codec's state, a zstd window of up
// to 8 MiB with the decoder's buffers, or two legacy LZ4 blocks of 8 MiB;
// and 1 MiB for the rest of arrow-go's bookkeeping.
const (
	zstdState = 10 << 20
	lz4State  = 17 << 20
)

// FuzzDecode feeds arbitrary bytes to Decode and, when it succeeds, to
// Record, and reads every value of every record it returns: each step must
// return a value or an error wrapping ErrCorrupt or ErrTooLarge that names
// the file, never panic, and never allocate more than twice the budget
// (plus a small multiple of the input's size, and its codec's state).
// testdata/fuzz/FuzzDecode holds one seed for each defence of checkFooter,
// zstdWindow and Record, on which arrow-go alone dies or allocates far too
// much (TestDecode_Defences in seeds_test.go makes them and proves it),
// and the inputs that fuzzing found.
//
//	go test ./spill -run '^$' -fuzz FuzzDecode -fuzztime 3m
//
// Go minimizes every new input, and a failing one for up to a minute at
// 0 execs/sec, and a -fuzztime that ends meanwhile reports PASS; add
// -fuzzminimizetime 1x to see failures at once.
func FuzzDecode(f *testing.F) {
	valid, err := os.ReadFile("testdata/" + validKey)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	for _, data := range badInputs(f, valid) {
		f.Add(data)
	}
	for _, n := range []int{8, 64, len(valid) / 2, len(valid) - 10, len(valid) - 1} {
		f.Add(valid[:n])
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		limit := 2*fuzzBudget + 8*uint64(len(data)) + lz4State // dictionaries may be either
		check := func(step string, alloc uint64, err error) {
			t.Helper()
			if alloc > limit {
				t.Fatalf("%s allocated %d bytes, more than %d for a %d-byte input", step, alloc, limit, len(data))
			}
			if err != nil && (!errors.Is(err, spill.ErrCorrupt) && !errors.Is(err, spill.ErrTooLarge) || !strings.Contains(err.Error(), "fuzz.arrow")) {
				t.Fatalf("%s = %v, want ErrCorrupt or ErrTooLarge naming fuzz.arrow", step, err)
			}
		}
		var r *spill.Reader
		alloc := allocated(func() {
			r, err = spill.Decode("fuzz.arrow", data, spill.WithMaxRecordSize(fuzzBudget), spill.WithAllocator(memory.NewGoAllocator()))
		})
		if check("Decode", alloc, err); err != nil {
			return
		}
		defer r.Close()
		if r.Compression() == "" {
			t.Error("Compression() is empty")
		}
		if !strings.Contains(r.Compression(), "lz4") {
			limit -= lz4State - zstdState
		}
		for i := range r.NumRecords() {
			var rec arrow.RecordBatch
			alloc := allocated(func() { rec, err = r.Record(i) })
			if check(fmt.Sprintf("Record(%d)", i), alloc, err); err != nil {
				continue
			}
			// The engine reads every value; none may panic.
			for _, col := range rec.Columns() {
				for j := range col.Len() {
					if !col.IsNull(j) {
						_ = col.ValueStr(j)
					}
				}
			}
			rec.Release()
		}
	})
}

// allocated returns the bytes f allocated on the Go heap.
func allocated(f func()) uint64 {
	sample := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(sample)
	before := sample[0].Value.Uint64()
	f()
	metrics.Read(sample)
	return sample[0].Value.Uint64() - before
}

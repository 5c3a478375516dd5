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

// FuzzDecode feeds arbitrary bytes to Decode and, when it succeeds, to
// Record, and reads every value of every record it returns: each step must
// return a value or an error wrapping ErrCorrupt or ErrTooLarge that names
// the file, never panic, and never allocate more than the budget (plus a
// small multiple of the input's size). testdata/fuzz/FuzzDecode holds one
// seed for each defence of checkFooter and Record, on which arrow-go alone
// dies (TestDecode_Defences in seeds_test.go makes them and proves it).
//
//	go test ./spill -run '^$' -fuzz FuzzDecode -fuzztime 3m
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
		limit := 2*fuzzBudget + 8*uint64(len(data)) + 1<<20
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

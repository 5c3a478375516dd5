package spill_test

import (
	"errors"
	"os"
	"testing"

	"github.com/mrengine/mr/spill"
)

// FuzzOpen feeds arbitrary bytes to Open and, when it succeeds, to Record:
// each must return a value or an error wrapping ErrCorrupt or ErrTooLarge,
// never panic or run out of memory. With sealed set the input gets a
// correct trailer, so that the fuzzer reaches Arrow's parser instead of
// stopping at the checksum. The small record size limit keeps bogus
// allocations cheap. testdata/fuzz/FuzzOpen holds the inputs that crashed
// arrow-go before Open guarded against them: a buffer claiming a 17 TB
// uncompressed size, and a field claiming billions of children.
//
//	go test -fuzz FuzzOpen -fuzztime 30s ./spill
func FuzzOpen(f *testing.F) {
	valid, err := os.ReadFile(validGolden)
	if err != nil {
		f.Fatal(err)
	}
	body := valid[:len(valid)-spill.TrailerSize]
	f.Add(valid, false)
	f.Add(body, true)
	for _, data := range badInputs(f, valid) {
		f.Add(data, false)
	}
	for _, n := range []int{0, 8, 64, len(body) / 2, len(body) - 1} {
		f.Add(body[:n], true)
	}

	f.Fuzz(func(t *testing.T, data []byte, sealed bool) {
		if sealed {
			data = seal(data)
		}
		r, err := spill.Open("fuzz.arrow", spill.WithFS(bytesFS{data: data}), spill.WithMaxRecordSize(1<<20))
		if err != nil {
			if !errors.Is(err, spill.ErrCorrupt) && !errors.Is(err, spill.ErrTooLarge) {
				t.Fatalf("Open() = %v, want ErrCorrupt or ErrTooLarge", err)
			}
			return
		}
		defer r.Close()
		if _, err := readRecords(r); err != nil && !errors.Is(err, spill.ErrCorrupt) && !errors.Is(err, spill.ErrTooLarge) {
			t.Fatalf("Record() = %v, want ErrCorrupt or ErrTooLarge", err)
		}
	})
}

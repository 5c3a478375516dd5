package spill_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mrengine/mr/internal/blobs"
	"github.com/mrengine/mr/spill"
)

// Run with: go test -run='^$' -bench=. ./spill
//
// Both benchmarks report Arrow bytes in memory per second (SetBytes),
// rows/s, and ratio: Arrow bytes in memory over bytes on disk. Writer
// timings include the fsyncs of Commit. rows=10000 is one file of one
// record batch, the shape of a map task's flush to one bucket; rows=100
// is the fixed cost of a file.

// benchBatchRows is the rows per record batch, as a map task flushes them.
const benchBatchRows = 10000

// rollupRows returns n rows shaped like daily_rollup shuffle data: small
// account ids, a few categories, a year of days, cent amounts.
func rollupRows(rng *rand.Rand, n int) []row {
	categories := []string{"books", "games", "garden", "grocery", "music", "sports", "toys", "travel"}
	rows := make([]row, n)
	for i := range rows {
		rows[i] = row{
			ID:    ptr(rng.Int64N(10000)),
			Score: ptr(float64(rng.IntN(100000)) / 100),
			Name:  ptr(categories[rng.IntN(len(categories))]),
			OK:    ptr(rng.IntN(10) != 0),
			Day:   ptr(arrow.Date32(19700 + rng.IntN(365))),
			At:    ptr(arrow.Timestamp(1.7e15 + rng.Int64N(3.15e13))),
		}
		if rng.IntN(50) == 0 {
			rows[i].Name = nil
		}
	}
	return rows
}

// benchRecords returns rows rows of rollup data in batches, and their size
// in memory.
func benchRecords(b *testing.B, rows int) ([]arrow.RecordBatch, int64) {
	b.Helper()
	rng := rand.New(rand.NewPCG(1, 1))
	var recs []arrow.RecordBatch
	var size int64
	for done := 0; done < rows; done += benchBatchRows {
		rec := buildRecord(b, memory.DefaultAllocator, rollupRows(rng, min(benchBatchRows, rows-done)))
		b.Cleanup(rec.Release)
		recs = append(recs, rec)
		for _, col := range rec.Columns() {
			for _, buf := range col.Data().Buffers() {
				if buf != nil {
					size += int64(buf.Len())
				}
			}
		}
	}
	return recs, size
}

func commit(b *testing.B, bucket *blobs.Bucket, key string, recs []arrow.RecordBatch) spill.File {
	b.Helper()
	w, err := spill.Create(context.Background(), bucket, key, testSchema)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Abort()
	for _, rec := range recs {
		if err := w.Write(rec); err != nil {
			b.Fatal(err)
		}
	}
	f, err := w.Commit()
	if err != nil {
		b.Fatal(err)
	}
	return f
}

func benchBucket(b *testing.B) *blobs.Bucket {
	b.Helper()
	bucket, err := blobs.OpenDir(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { bucket.Close() })
	return bucket
}

func BenchmarkWriter(b *testing.B) {
	for _, rows := range []int{100, 10000, 100000} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			recs, size := benchRecords(b, rows)
			bucket := benchBucket(b)
			var f spill.File
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				f = commit(b, bucket, "run-1/shuffle/b0000/p0000.arrow", recs)
			}
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(size)/float64(f.Size), "ratio")
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	for _, rows := range []int{100000} {
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			recs, size := benchRecords(b, rows)
			bucket := benchBucket(b)
			f := commit(b, bucket, "run-1/shuffle/b0000/p0000.arrow", recs)
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				r, err := spill.Open(context.Background(), bucket, f)
				if err != nil {
					b.Fatal(err)
				}
				for i := range r.NumRecords() {
					rec, err := r.Record(i)
					if err != nil {
						b.Fatal(err)
					}
					rec.Release()
				}
				r.Close()
			}
			b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(size)/float64(f.Size), "ratio")
		})
	}
}

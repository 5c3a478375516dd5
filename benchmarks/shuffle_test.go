package benchmarks

import (
	"context"
	"sync"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/mrengine/mr/internal/blobs"
	"github.com/mrengine/mr/jobs"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/shuffle"
)

// shuffleBuckets is the engine's default bucket count on this 2-CPU
// machine class (4 per worker).
const shuffleBuckets = 8

// rollupSchema is the layout of daily_rollup's shuffle records, as the
// engine derives it from the job's codecs: key fields, then value fields.
var rollupSchema = shuffle.Schema(jobs.DailyRollup.Spec().Shuffle)

// BenchmarkShuffleWrite writes rows daily_rollup records (one per group,
// as a map-side combine leaves them) into shuffleBuckets zstd Arrow spill
// files through package shuffle, as a map task's commit does: hash each
// key to its bucket, append it to that bucket's builders, then Flush
// (encode, compress, fsync, rename). MB/s counts Arrow bytes in memory
// (32 bytes a row plus the category text); ratio is those bytes over the
// bytes on disk.
func BenchmarkShuffleWrite(b *testing.B) {
	b.Cleanup(dropRollupEntries)
	for _, rows := range []int{smallRows, heavyRows} {
		b.Run(rowsName(int64(rows)), func(b *testing.B) {
			skipUnlessAllowed(b, int64(rows))
			entries, size := rollupEntries(rows)
			bucket := shuffleBucket(b)
			var files []shuffle.File
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				files = writeShuffle(b, bucket, entries)
			}
			b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(size)/float64(filesSize(files)), "ratio")
		})
	}
}

// BenchmarkShuffleRead reads back the files BenchmarkShuffleWrite writes,
// checksums verified, decompressing every record and touching every value,
// as a reduce task does before combining.
func BenchmarkShuffleRead(b *testing.B) {
	b.Cleanup(dropRollupEntries)
	for _, rows := range []int{smallRows, heavyRows} {
		b.Run(rowsName(int64(rows)), func(b *testing.B) {
			skipUnlessAllowed(b, int64(rows))
			entries, size := rollupEntries(rows)
			bucket := shuffleBucket(b)
			files := writeShuffle(b, bucket, entries)
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				var n, events int64
				err := shuffle.Read(context.Background(), bucket, files, func(rec arrow.RecordBatch) error {
					accounts := rec.Column(0).(*array.Int64).Int64Values()
					days := rec.Column(1).(*array.Date32).Date32Values()
					cats := rec.Column(2).(*array.String)
					ev := rec.Column(3).(*array.Int64).Int64Values()
					cents := rec.Column(4).(*array.Int64).Int64Values()
					for i := range accounts {
						events += ev[i] + accounts[i] + int64(days[i]) + int64(len(cats.Value(i))) + cents[i]&1
					}
					n += rec.NumRows()
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				if n != int64(rows) || events == 0 {
					b.Fatalf("read %d records, want %d", n, rows)
				}
			}
			b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(size)/float64(filesSize(files)), "ratio")
		})
	}
}

// shuffleBucket returns blob storage in a temporary directory, as the
// engine's default is.
func shuffleBucket(b *testing.B) *blobs.Bucket {
	b.Helper()
	bucket, err := blobs.OpenDir(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { bucket.Close() })
	return bucket
}

// writeShuffle writes entries into shuffleBuckets spill files in bucket
// through the job's codecs, as a map task's commit does, replacing the
// files of an earlier call.
func writeShuffle(b *testing.B, bucket *blobs.Bucket, entries []rollupEntry) []shuffle.File {
	b.Helper()
	job := jobs.DailyRollup
	w := shuffle.NewWriter(rollupSchema, shuffleBuckets, 1, memory.NewGoAllocator())
	defer w.Release()
	for _, e := range entries {
		h := w.Hash()
		job.Key.Encode(e.key, h)
		rec := w.Record(h)
		job.Key.Encode(e.key, rec)
		job.Value.Encode(e.val, rec)
	}
	files, err := w.Flush(context.Background(), bucket, func(b int) string { return shuffle.MapKey("bench", b, 0, 1, "x") })
	if err != nil {
		b.Fatal(err)
	}
	return files
}

func filesSize(files []shuffle.File) int64 {
	var n int64
	for _, f := range files {
		n += f.Size
	}
	return n
}

// dropRollupEntries forgets the groups rollupEntries generated, so that
// later benchmarks' heap figures do not count them.
func dropRollupEntries() {
	rollupCache.mu.Lock()
	defer rollupCache.mu.Unlock()
	rollupCache.m = nil
}

// rollupEntry is one group of daily_rollup's output.
type rollupEntry struct {
	key jobs.RollupKey
	val jobs.RollupTotals
}

var rollupCache struct {
	mu sync.Mutex
	m  map[int]rollupGroups
}

type rollupGroups struct {
	entries []rollupEntry
	size    int64
}

// rollupEntries returns the first n groups daily_rollup finds in
// eventgen's rows (in order of first appearance, with the counts of the
// rows read until the n+1-th group appeared), and their size as Arrow
// holds them in memory: 32 bytes a row (three int64, a date32, a string
// offset) plus the category text. Generated once per n.
func rollupEntries(n int) ([]rollupEntry, int64) {
	rollupCache.mu.Lock()
	defer rollupCache.mu.Unlock()
	if g, ok := rollupCache.m[n]; ok {
		return g.entries, g.size
	}
	g := rollupGroups{entries: make([]rollupEntry, 0, n)}
	index := make(map[jobs.RollupKey]int, n)
	for e := range eventsConfig(int64(100 * n)).All() {
		if e.Poison {
			continue
		}
		k := jobs.RollupKey{Account: e.AccountID, Day: mapreduce.DateOf(e.TS), Category: e.Category}
		i, ok := index[k]
		if !ok {
			if len(g.entries) == n {
				break
			}
			i = len(g.entries)
			index[k] = i
			g.entries = append(g.entries, rollupEntry{key: k})
			g.size += 32 + int64(len(k.Category))
		}
		g.entries[i].val.Events++
		g.entries[i].val.TotalCents += e.AmountCents
	}
	if rollupCache.m == nil {
		rollupCache.m = map[int]rollupGroups{}
	}
	rollupCache.m[n] = g
	return g.entries, g.size
}

package benchmarks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/mrengine/mr/jobs"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/partition"
)

// BenchmarkSourceRead reads the whole events table, daily_rollup's
// columns, through sources.Postgres on one connection: keyset chunks of
// limit rows (ReadChunk, a query each), or one streamed range (Stream of
// the optional mapreduce.Streamer, handing over chunks of limit rows).
// MB/s counts the values as decoded (see pgEvents.bytes).
func BenchmarkSourceRead(b *testing.B) {
	in := jobs.DailyRollup.Spec().Input
	for _, rows := range []int64{smallRows, heavyRows} {
		for _, c := range []struct {
			mode  string
			limit int
		}{{"chunks", 1000}, {"chunks", 50000}, {"stream", 1000}} {
			b.Run(fmt.Sprintf("%s/mode=%s/limit=%d", rowsName(rows), c.mode, c.limit), func(b *testing.B) {
				skipUnlessAllowed(b, rows)
				ctx := context.Background()
				ev := seededPostgres(b, rows)
				src, _ := openPostgres(b, ev.dsn)
				info, err := src.Describe(ctx, in)
				if err != nil {
					b.Fatal(err)
				}
				all := partition.Range{Lo: info.Min, Hi: info.Max + 1}
				var read func(*mapreduce.Batch) (int64, error)
				switch st, ok := any(src).(mapreduce.Streamer); {
				case c.mode == "chunks":
					read = func(batch *mapreduce.Batch) (int64, error) {
						var n int64
						for r := all; ; r.Lo = batch.Last() + 1 {
							batch.Reset()
							err := src.ReadChunk(ctx, in, r, c.limit, batch)
							if errors.Is(err, io.EOF) {
								return n, nil
							}
							if err != nil {
								return n, err
							}
							n += int64(batch.Len())
						}
					}
				case !ok:
					b.Skip("sources.Postgres does not implement mapreduce.Streamer (yet), so the engine reads keyset chunks; see mode=chunks")
				default:
					read = func(batch *mapreduce.Batch) (int64, error) {
						var n int64
						err := st.Stream(ctx, in, all, c.limit, batch, func(batch *mapreduce.Batch) error {
							n += int64(batch.Len())
							return nil
						})
						return n, err
					}
				}
				batch := mapreduce.NewBatch(in.Columns)
				b.SetBytes(ev.bytes)
				b.ReportAllocs()
				for b.Loop() {
					n, err := read(batch)
					if err != nil {
						b.Fatal(err)
					}
					if n != rows {
						b.Fatalf("read %d rows, want %d", n, rows)
					}
				}
				b.ReportMetric(float64(rows*int64(b.N))/b.Elapsed().Seconds(), "rows/s")
			})
		}
	}
}

package benchmarks

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sync"
	"testing"

	"github.com/mrengine/mr/jobs"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/partition"
)

// BenchmarkMapCombine measures the CPU side of a run, with no database:
//
//   - path=func: the job's Map over every row, combined into a Go map with
//     its Combine, as a user would in a test, fed chunks of 1,000 rows;
//   - path=engine: mapreduce.Run over an in-memory source serving the same
//     rows and a sink that discards its rows, so that the time is the
//     engine's own: planning, map and map-side combine, the shuffle files
//     (write, fsync, read), the reduce-side combine, checkpoints and DLQ.
//
// The rows are eventgen's, held in memory as a PostgreSQL source decodes
// them (ts a time.Time, payload a string).
func BenchmarkMapCombine(b *testing.B) {
	b.Cleanup(dropMemEvents) // so that later benchmarks' heap figures do not count them
	for _, sh := range shapes {
		def, err := jobs.Lookup(sh.job)
		if err != nil {
			b.Fatal(err)
		}
		for _, rows := range []int64{smallRows, heavyRows} {
			b.Run(fmt.Sprintf("shape=%s/%s/path=func", sh.name, rowsName(rows)), func(b *testing.B) {
				skipUnlessAllowed(b, rows)
				src := memEvents(rows)
				var groups int
				b.SetBytes(src.bytes)
				b.ReportAllocs()
				for b.Loop() {
					switch sh.job {
					case "daily_rollup":
						groups = mapCombine(b, &jobs.DailyRollup, src)
					default:
						groups = mapCombine(b, &CategoryDayRollup, src)
					}
				}
				b.ReportMetric(float64(rows*int64(b.N))/b.Elapsed().Seconds(), "rows/s")
				b.ReportMetric(float64(groups), "groups")
			})
			b.Run(fmt.Sprintf("shape=%s/%s/path=engine", sh.name, rowsName(rows)), func(b *testing.B) {
				mapCombineEngine(b, def, rows)
			})
		}
	}
	def, err := jobs.Lookup(EventTotals.Name)
	if err != nil {
		b.Fatal(err)
	}
	for _, rows := range []int64{smallRows, heavyRows, hugeRows} {
		b.Run(fmt.Sprintf("shape=distinct/%s/path=engine", rowsName(rows)), func(b *testing.B) {
			mapCombineEngine(b, def, rows)
		})
	}
}

// mapCombineEngine is BenchmarkMapCombine's path=engine: def through
// mapreduce.Run over memEvents(rows) into a discardSink.
func mapCombineEngine(b *testing.B, def mapreduce.Definition, rows int64) {
	skipUnlessAllowed(b, rows)
	src := memEvents(rows)
	sink := &discardSink{}
	cfg := benchConfig(b)
	var s mapreduce.Summary
	var err error
	b.SetBytes(src.bytes)
	b.ReportAllocs()
	for b.Loop() {
		if s, err = mapreduce.Run(context.Background(), def, src, sink, cfg); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(rows*int64(b.N))/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(s.Groups), "groups")
	b.ReportMetric(float64(s.BytesSpilled)/(1<<20), "spilled-MiB")
}

// EventTotals keys every event by its id, a group per row: the far end
// of cardinality, where a map task's combine table never meets a key
// twice, so that its map tasks stream their pairs to the shuffle
// uncombined (see mapreduce/adapt.go). It is registered by this package
// alone, for BenchmarkMapCombine/shape=distinct.
var EventTotals = mapreduce.Job[int64, jobs.RollupTotals]{
	Name:        "event_totals",
	Description: "events and total cents per event (benchmarks only)",
	Input:       mapreduce.Input{Table: "events", Cursor: "id", Columns: []string{"amount_cents"}},
	Output:      mapreduce.Output{Table: "event_totals"},
	Key:         mapreduce.Columns[int64]("event_id"),
	Value:       jobs.DailyRollup.Value,
	Map: func(_ context.Context, row mapreduce.Row, emit func(int64, jobs.RollupTotals)) error {
		emit(row.Cursor(), jobs.RollupTotals{Events: 1, TotalCents: row.Int64(0)})
		return nil
	},
	Combine: jobs.DailyRollup.Combine,
}

func init() { jobs.Register(EventTotals) }

// mapCombine runs j.Map over every row of src in chunks of
// mapreduce.DefaultConfig().ChunkSize and combines the pairs in a Go map; rows whose
// Map fails are skipped. It returns the number of groups.
func mapCombine[K comparable, V any](b *testing.B, j *mapreduce.Job[K, V], src *memSource) int {
	ctx := context.Background()
	in := j.Spec().Input
	m := make(map[K]V)
	emit := func(k K, v V) {
		if old, ok := m[k]; ok {
			v = j.Combine(old, v)
		}
		m[k] = v
	}
	batch := mapreduce.NewBatch(in.Columns)
	r := partition.Range{Lo: src.ids[0], Hi: src.ids[len(src.ids)-1] + 1}
	for {
		batch.Reset()
		err := src.ReadChunk(ctx, in, r, mapreduce.DefaultConfig().ChunkSize, batch)
		if err == io.EOF {
			return len(m)
		}
		if err != nil {
			b.Fatal(err)
		}
		for i := range batch.Len() {
			_ = j.Map(ctx, batch.Row(i), emit) // a failed row emits nothing here
		}
		r.Lo = batch.Last() + 1
	}
}

// memSource is a mapreduce.Source serving eventgen rows from memory, with
// each value boxed once, up front, so that reading costs only copying.
type memSource struct {
	ids   []int64
	cols  map[string][]any // column name → value of each row
	bytes int64            // as pgEvents.bytes
}

var _ mapreduce.Source = (*memSource)(nil)

var memSources struct {
	mu sync.Mutex
	m  map[int64]*memSource
}

// memEvents returns the rows of eventsConfig(rows) in memory, generated
// once per test binary.
func memEvents(rows int64) *memSource {
	memSources.mu.Lock()
	defer memSources.mu.Unlock()
	if s := memSources.m[rows]; s != nil {
		return s
	}
	names := []string{"account_id", "ts", "category", "amount_cents", "payload"}
	s := &memSource{ids: make([]int64, 0, rows), cols: map[string][]any{}}
	for _, name := range names {
		s.cols[name] = make([]any, 0, rows)
	}
	for e := range eventsConfig(rows).All() {
		s.ids = append(s.ids, e.ID)
		var payload any
		if e.Payload.Valid {
			payload = e.Payload.String
		}
		for i, v := range []any{e.AccountID, e.TS.UTC(), e.Category, e.AmountCents, payload} {
			s.cols[names[i]] = append(s.cols[names[i]], v)
		}
		s.bytes += 32 + int64(len(e.Category)+len(e.Payload.String))
	}
	if memSources.m == nil {
		memSources.m = map[int64]*memSource{}
	}
	memSources.m[rows] = s
	return s
}

// dropMemEvents forgets the rows memEvents generated.
func dropMemEvents() {
	memSources.mu.Lock()
	defer memSources.mu.Unlock()
	memSources.m = nil
}

func (s *memSource) String() string { return fmt.Sprintf("memory:events-%d", len(s.ids)) }

func (s *memSource) Describe(_ context.Context, in mapreduce.Input) (mapreduce.TableInfo, error) {
	for _, c := range in.Columns {
		if s.cols[c] == nil {
			return mapreduce.TableInfo{}, fmt.Errorf("memory source: no column %q", c)
		}
	}
	if len(s.ids) == 0 {
		return mapreduce.TableInfo{}, nil
	}
	return mapreduce.TableInfo{Min: s.ids[0], Max: s.ids[len(s.ids)-1], Rows: int64(len(s.ids))}, nil
}

func (s *memSource) ReadChunk(_ context.Context, in mapreduce.Input, r partition.Range, limit int, b *mapreduce.Batch) error {
	i, _ := slices.BinarySearch(s.ids, r.Lo)
	cols := make([][]any, len(in.Columns))
	for j, c := range in.Columns {
		cols[j] = s.cols[c]
	}
	n := 0
	for ; i < len(s.ids) && s.ids[i] < r.Hi && n < limit; i, n = i+1, n+1 {
		b.Append(s.ids[i])
		for j := range cols {
			b.Set(j, cols[j][i])
		}
	}
	if n == 0 {
		return io.EOF
	}
	return nil
}

// discardSink is a mapreduce.Sink that reads every row and keeps none.
type discardSink struct {
	mu   sync.Mutex
	rows int64
}

var _ mapreduce.Sink = (*discardSink)(nil)

func (*discardSink) String() string                                       { return "discard:" }
func (*discardSink) Prepare(context.Context, mapreduce.OutputTable) error { return nil }
func (*discardSink) Committed(context.Context, string) ([]int, error)     { return nil, nil }
func (s *discardSink) Apply(_ context.Context, _ mapreduce.OutputTable, _ string, _ int, rows mapreduce.OutputRows) error {
	var n int64
	for rows.Next() {
		if _, err := rows.Values(); err != nil {
			return err
		}
		n++
	}
	s.mu.Lock()
	s.rows += n
	s.mu.Unlock()
	return rows.Err()
}

package sources_test

import (
	"fmt"
	"math"
	"slices"
	"testing"

	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/partition"
	"github.com/mrengine/mr/sources"
)

// Tables of 200,000 rows for Split, created without autovacuum so that
// "not analyzed" stays true.
const (
	uniformTable = `CREATE TABLE t (id bigint PRIMARY KEY, pad text) WITH (autovacuum_enabled = false);
		INSERT INTO t SELECT i * 3, repeat('x', 40) FROM generate_series(1, 200000) i`
	// skewedTable has 90% of its rows in the last 10% of its id space:
	// 20,000 ids spread over (0, 1,800,000], 180,000 in (1,800,000, 2,000,000].
	skewedTable = `CREATE TABLE t (id bigint PRIMARY KEY, pad text) WITH (autovacuum_enabled = false);
		INSERT INTO t SELECT i * 90, repeat('x', 40) FROM generate_series(1, 20000) i;
		INSERT INTO t SELECT 1800000 + i, repeat('x', 40) FROM generate_series(1, 200000) i WHERE i % 10 <> 0`
)

func TestPostgres_Split(t *testing.T) {
	t.Parallel()
	const n = 8
	in := mapreduce.Input{Table: "t", Cursor: "id", Columns: []string{"pad"}}

	for _, tt := range []struct {
		name   string
		create []string
		setup  func(*sources.Postgres)
		method string
	}{
		{"Uniform/Analyzed", []string{uniformTable, `ANALYZE t`}, nil, sources.SplitHistogram},
		{"Uniform/NotAnalyzed", []string{uniformTable}, nil, sources.SplitBernoulli},
		{"Skewed/Analyzed", []string{skewedTable, `ANALYZE t`}, nil, sources.SplitHistogram},
		{"Skewed/NotAnalyzed", []string{skewedTable}, nil, sources.SplitBernoulli},
		{"Skewed/NotAnalyzed/PageSample", []string{skewedTable},
			func(s *sources.Postgres) { sources.SetSampleThresholds(s, 0, 0) }, sources.SplitSystem},
		{"Skewed/NotAnalyzed/FullRead", []string{skewedTable},
			func(s *sources.Postgres) { sources.SetSampleThresholds(s, 1_000_000, 1_000_000) }, sources.SplitFullRead},
		// Analyzed while it held the sparse 10% only: the histogram is
		// stale, and a sample takes over.
		{"Skewed/Stale", []string{`CREATE TABLE t (id bigint PRIMARY KEY, pad text) WITH (autovacuum_enabled = false);
			INSERT INTO t SELECT i * 90, repeat('x', 40) FROM generate_series(1, 20000) i`, `ANALYZE t`,
			`INSERT INTO t SELECT 1800000 + i, repeat('x', 40) FROM generate_series(1, 200000) i WHERE i % 10 <> 0`},
			nil, sources.SplitBernoulli},
		// A view has no statistics and no TABLESAMPLE.
		{"View", []string{uniformTable, `ALTER TABLE t RENAME TO base`, `CREATE VIEW t AS SELECT * FROM base`},
			nil, sources.SplitEqualWidth},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			bundle := setupPostgres(t, tt.create...)
			if tt.setup != nil {
				tt.setup(bundle.src)
			}
			// Describe refuses a view (no unique index): describe its table.
			table := "t"
			if tt.method == sources.SplitEqualWidth {
				table = "base"
			}
			info, err := bundle.src.Describe(t.Context(), mapreduce.Input{Table: table, Cursor: "id"})
			if err != nil {
				t.Fatal(err)
			}
			parts, method, err := sources.SplitMethod(t.Context(), bundle.src, in, info, n)
			if err != nil {
				t.Fatal(err)
			}
			if method != tt.method {
				t.Errorf("split by %s, want %s", method, tt.method)
			}
			checkCover(t, parts, info, n)

			var est int64
			sizes := make([]int64, n)
			for i, p := range parts {
				sizes[i] = bundle.count(t, `SELECT count(*) FROM t WHERE id >= $1 AND id < $2`, p.Lo, p.Hi)
				est += p.Rows
			}
			total := bundle.count(t, `SELECT count(*) FROM t`)
			t.Logf("info %+v, partitions %v, rows %v", info, parts, sizes)
			if tt.method != sources.SplitEqualWidth {
				mean := float64(total) / n
				if big := slices.Max(sizes); float64(big) > 2*mean {
					t.Errorf("largest partition has %d rows, more than twice the mean %.0f", big, mean)
				}
			}
			if math.Abs(float64(est-info.Rows)) > float64(n) {
				t.Errorf("partitions estimate %d rows in all, Describe %d", est, info.Rows)
			}

			// Every row read once, in order, across partition and chunk
			// boundaries.
			var got []int64
			for _, p := range parts {
				got = append(got, readAll(t, bundle.src, in, p.Range, 997)...)
			}
			if int64(len(got)) != total {
				t.Errorf("read %d rows, the table has %d", len(got), total)
			}
			for i := 1; i < len(got); i++ {
				if got[i] <= got[i-1] {
					t.Fatalf("read cursor %d after %d", got[i], got[i-1])
				}
			}
			var sum int64
			for _, c := range got {
				sum += c
			}
			if want := bundle.count(t, `SELECT sum(id)::int8 FROM t`); sum != want {
				t.Errorf("cursors read sum to %d, the table's to %d", sum, want)
			}
		})
	}

	t.Run("Small", func(t *testing.T) {
		t.Parallel()
		bundle := setupPostgres(t, `CREATE TABLE t (id bigint PRIMARY KEY, pad text)`,
			`INSERT INTO t VALUES (-5, ''), (0, ''), (1, ''), (2, ''), (1000000, '')`)
		info, err := bundle.src.Describe(t.Context(), in)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range []int{1, 2, 3, 5, 8} {
			parts, err := bundle.src.Split(t.Context(), in, info, n)
			if err != nil {
				t.Fatal(err)
			}
			checkCover(t, parts, info, n)
			var got []int64
			for _, p := range parts {
				got = append(got, readAll(t, bundle.src, in, p.Range, 1)...)
			}
			if fmt.Sprint(got) != "[-5 0 1 2 1000000]" {
				t.Errorf("n=%d: partitions %v read %v", n, parts, got)
			}
		}
	})

	t.Run("Errors", func(t *testing.T) {
		t.Parallel()
		bundle := setupPostgres(t, `CREATE TABLE t (id bigint PRIMARY KEY, pad text)`)
		_, err := bundle.src.Split(t.Context(), mapreduce.Input{Table: "nope", Cursor: "id"}, mapreduce.TableInfo{Min: 1, Max: 10, Rows: 10}, 2)
		checkError(t, "Split", err, fmt.Sprintf(`sources: table "nope" not found in %s (check --table)`, bundle.src))
	})

	// Cursors at both ends of int64, by every method: the last partition
	// holds math.MaxInt64 (ToMax), the first math.MinInt64.
	t.Run("Int64Edges", func(t *testing.T) {
		t.Parallel()
		const edges = `CREATE TABLE t (id bigint PRIMARY KEY, pad text) WITH (autovacuum_enabled = false);
			INSERT INTO t SELECT i * 46116860184273879, '' FROM generate_series(-199, 199) i;
			INSERT INTO t VALUES (-9223372036854775808, ''), (-9223372036854775807, ''), (9223372036854775806, ''), (9223372036854775807, '')`
		for _, tt := range []struct {
			name   string
			create []string
			setup  func(*sources.Postgres)
			method string
		}{
			{"Histogram", []string{edges, `ANALYZE t`}, nil, sources.SplitHistogram},
			{"FullRead", []string{edges}, nil, sources.SplitFullRead},
			{"Bernoulli", []string{edges}, func(s *sources.Postgres) { sources.SetSampleThresholds(s, 0, 1_000_000) }, sources.SplitBernoulli},
			{"TopOnly", []string{`CREATE TABLE t (id bigint PRIMARY KEY, pad text); INSERT INTO t VALUES (9223372036854775807, '')`}, nil, ""},
		} {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				bundle := setupPostgres(t, tt.create...)
				if tt.setup != nil {
					tt.setup(bundle.src)
				}
				info, err := bundle.src.Describe(t.Context(), in)
				if err != nil {
					t.Fatal(err)
				}
				total := bundle.count(t, `SELECT count(*) FROM t`)
				for _, n := range []int{1, 2, 3, 8} {
					parts, method, err := sources.SplitMethod(t.Context(), bundle.src, in, info, n)
					if err != nil {
						t.Fatal(err)
					}
					if n > 1 && tt.method != "" && method != tt.method {
						t.Errorf("n=%d: split by %s, want %s", n, method, tt.method)
					}
					checkCover(t, parts, info, n)
					var got []int64
					for _, p := range parts {
						got = append(got, readAll(t, bundle.src, in, p.Range, 7)...)
					}
					if int64(len(got)) != total || got[len(got)-1] != math.MaxInt64 || !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
						t.Errorf("n=%d: partitions %v read %d rows (last %d), want each of the %d once", n, parts, len(got), got[len(got)-1], total)
					}
				}
			})
		}
	})
}

// checkCover checks that parts are n ranges that cover info.Min through
// info.Max contiguously, none empty when the span leaves room.
func checkCover(t *testing.T, parts []mapreduce.Partition, info mapreduce.TableInfo, n int) {
	t.Helper()
	if len(parts) != n {
		t.Fatalf("%d partitions, want %d", len(parts), n)
	}
	span := partition.Through(info.Min, info.Max)
	if last := parts[n-1].Range; parts[0].Lo != info.Min || last.Hi != span.Hi || last.ToMax != span.ToMax {
		t.Errorf("partitions %v do not span %v", parts, span)
	}
	for i, p := range parts {
		if i > 0 && (p.Lo != parts[i-1].Hi || parts[i-1].ToMax) {
			t.Errorf("partitions %v not contiguous at %d", parts, i)
		}
		if p.Empty() && span.Width() >= float64(n) {
			t.Errorf("partition %d of %v is empty", i, parts)
		}
	}
}

func TestDistinctCuts(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		cuts, want []int64
		toMax      bool
	}{
		{[]int64{0, 5, 5, 5, 10}, []int64{0, 5, 6, 7, 10}, false},
		{[]int64{0, 9, 10, 10, 10}, []int64{0, 7, 8, 9, 10}, false},
		{[]int64{0, 0, 0, 10}, []int64{0, 1, 2, 10}, false},
		{[]int64{0, -4, 20, 3}, []int64{0, 1, 2, 3}, false},
		{[]int64{0, 1, 1, 1, 1, 3}, []int64{0, 1, 1, 1, 2, 3}, false}, // span 3 for 5 partitions
		{[]int64{math.MinInt64, math.MinInt64, math.MinInt64 + 1}, []int64{math.MinInt64, math.MinInt64, math.MinInt64 + 1}, false},
		{[]int64{math.MaxInt64 - 1, math.MaxInt64, math.MaxInt64, math.MaxInt64}, []int64{math.MaxInt64 - 1, math.MaxInt64, math.MaxInt64, math.MaxInt64}, false},
		{[]int64{math.MaxInt64 - 2, math.MaxInt64, math.MaxInt64, math.MaxInt64}, []int64{math.MaxInt64 - 2, math.MaxInt64 - 2, math.MaxInt64 - 1, math.MaxInt64}, false},
		// The last partition holds math.MaxInt64 as well: three values
		// for three partitions.
		{[]int64{math.MaxInt64 - 2, math.MaxInt64, math.MaxInt64, math.MaxInt64}, []int64{math.MaxInt64 - 2, math.MaxInt64 - 1, math.MaxInt64, math.MaxInt64}, true},
		{[]int64{math.MaxInt64, math.MaxInt64, math.MaxInt64, math.MaxInt64}, []int64{math.MaxInt64, math.MaxInt64, math.MaxInt64, math.MaxInt64}, true},
		{[]int64{math.MaxInt64 - 10, math.MaxInt64 - 1, math.MaxInt64, math.MaxInt64, math.MaxInt64}, []int64{math.MaxInt64 - 10, math.MaxInt64 - 2, math.MaxInt64 - 1, math.MaxInt64, math.MaxInt64}, true},
	} {
		got := slices.Clone(tt.cuts)
		sources.DistinctCuts(got, tt.toMax)
		if !slices.Equal(got, tt.want) {
			t.Errorf("distinctCuts(%v, %v) = %v, want %v", tt.cuts, tt.toMax, got, tt.want)
		}
	}
}

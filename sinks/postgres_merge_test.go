package sinks_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/apd/v3"
	"github.com/jackc/pgx/v5"

	"github.com/mrengine/mr/internal/pg"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/sinks"
	"github.com/mrengine/mr/sinks/sinktest"
)

// sumRollup merges two daily_rollup rows: both values add up.
func sumRollup(stored, row []any) []any {
	if stored == nil {
		return row
	}
	return []any{row[0], row[1], row[2], stored[3].(int64) + row[3].(int64), stored[4].(int64) + row[4].(int64)}
}

func rollupParts(parts ...[][]any) *sinktest.Parts {
	return &sinktest.Parts{KeyCols: 3, Parts: parts, CombineFunc: sumRollup}
}

func TestPostgres_Merge(t *testing.T) {
	t.Parallel()

	// setup prepares rollup through a sink on dsn, or on a fresh schema,
	// and applies rollupRows(0, 1000, 1) to it under c1.
	setup := func(t *testing.T, b *pgBundle) {
		t.Helper()
		if err := b.sink.Prepare(t.Context(), rollup); err != nil {
			t.Fatal(err)
		}
		if err := b.sink.Apply(t.Context(), rollup, "c1", 0, &tableRows{rows: rollupRows(0, 1000, 1)}); err != nil {
			t.Fatal(err)
		}
	}
	// sums returns count(*), sum(events) and the commit records of c2.
	sums := func(t *testing.T, b *pgBundle) string {
		t.Helper()
		return fmt.Sprint(b.query(t, `SELECT count(*), sum(events)::bigint FROM daily_rollup`),
			b.query(t, `SELECT bucket, "rows" FROM mr_bucket_commits WHERE commit_key = 'c2'`))
	}
	// The parts of every case: 500 stored keys and 500 new, in two parts.
	parts := func() [][][]any { return [][][]any{rollupRows(500, 500, 2), rollupRows(1000, 500, 2)} }
	const merged = "[[1500 3000]] [[0 1000]]" // 500 rows of 1, 500 of 1+2, 500 of 2; 1000 rows merged

	t.Run("RecordsRows", func(t *testing.T) {
		t.Parallel()
		b := setupPostgres(t)
		setup(t, b)
		if err := b.sink.Merge(t.Context(), rollup, rollup.Values, "c2", 0, rollupParts(parts()...)); err != nil {
			t.Fatal(err)
		}
		if got := sums(t, b); got != merged {
			t.Errorf("count, sum(events), commit records = %s, want %s", got, merged)
		}
	})

	// The stored rows are read exactly from columns of types wider than
	// mr's own (see postgresHolders), in a session far from UTC.
	t.Run("WiderColumns", func(t *testing.T) {
		t.Parallel()
		b := setupPostgres(t)
		if _, err := b.pool.Exec(t.Context(), `CREATE TABLE wide (k bigint PRIMARY KEY, n numeric, s varchar,
			ts timestamptz(6), d numeric(12, 2))`); err != nil {
			t.Fatal(err)
		}
		wide := mapreduce.OutputTable{
			Name: "wide",
			Keys: []mapreduce.Field{{Name: "k", Type: mapreduce.TypeInt64}},
			Values: []mapreduce.Field{{Name: "n", Type: mapreduce.TypeInt64}, {Name: "s", Type: mapreduce.TypeString},
				{Name: "ts", Type: mapreduce.TypeTimestamp}, {Name: "d", Type: mapreduce.TypeDecimal, SQLType: "numeric(12, 2)"}},
		}
		sink := openPostgres(t, withOption(t, b.dsn, "-c TimeZone=Pacific/Kiritimati"))
		if err := sink.Prepare(t.Context(), wide); err != nil {
			t.Fatal(err)
		}
		ts := time.Date(2026, 11, 29, 23, 30, 0, 123_456_000, time.UTC)
		dec, _, _ := apd.NewFromString("12.30")
		in := []any{int64(1), int64(-9007199254740993), "ünïcode", ts, dec}
		if err := sink.Apply(t.Context(), wide, "c1", 0, &tableRows{rows: [][]any{in}}); err != nil {
			t.Fatal(err)
		}
		p := &sinktest.Parts{KeyCols: 1, Parts: [][][]any{{in}}, CombineFunc: func(stored, _ []any) []any { return stored }}
		if err := sink.Merge(t.Context(), wide, wide.Values, "c2", 0, p); err != nil {
			t.Fatal(err)
		}
		if got, want := sinktest.Canon(p.Stored[0][0]), sinktest.Canon(in); got != want {
			t.Errorf("stored row:\ngot  %s\nwant %s", got, want)
		}
	})

	// An infinite timestamp, which PostgreSQL takes and no field value
	// is, fails the Merge, naming the column and what to do.
	t.Run("Infinite", func(t *testing.T) {
		t.Parallel()
		b := setupPostgres(t)
		inf := mapreduce.OutputTable{Name: "inf", Keys: []mapreduce.Field{{Name: "k", Type: mapreduce.TypeInt64}},
			Values: []mapreduce.Field{{Name: "ts", Type: mapreduce.TypeTimestamp}}}
		if err := b.sink.Prepare(t.Context(), inf); err != nil {
			t.Fatal(err)
		}
		if _, err := b.pool.Exec(t.Context(), `INSERT INTO inf VALUES (1, 'infinity')`); err != nil {
			t.Fatal(err)
		}
		p := &sinktest.Parts{KeyCols: 1, Parts: [][][]any{{{int64(1), nil}}}, CombineFunc: func(_, row []any) []any { return row }}
		err := b.sink.Merge(t.Context(), inf, inf.Values, "c2", 0, p)
		if want := `part 0: read the stored rows: stored row 0: column "ts" holds an infinite value, which no field of the job can: ` +
			`change or delete the row`; err == nil || !strings.HasSuffix(err.Error(), want) {
			t.Errorf("Merge error:\ngot  %v\nwant one ending %s", err, want)
		}
	})

	t.Run("Arrays", func(t *testing.T) {
		t.Parallel()
		b := setupPostgres(t)
		setup(t, b)
		cols := []mapreduce.Field{{Name: "events", Type: mapreduce.TypeInt64, Array: true}}
		p := rollupParts(parts()...)
		err := b.sink.Merge(t.Context(), rollup, cols, "c2", 0, p)
		if err == nil || !strings.Contains(err.Error(), `column "events" of table "daily_rollup" is an array`) || p.Nexts != 0 {
			t.Errorf("Merge of an array column: error %v after %d calls of Next, want one naming the column before any", err, p.Nexts)
		}
	})

	t.Run("ConnectionFaults", func(t *testing.T) {
		t.Parallel()
		setupProxied := func(t *testing.T) (*pgBundle, *faultProxy) {
			t.Helper()
			b := setupPostgres(t)
			dsn, p := proxied(t, b.dsn)
			b.sink = openPostgres(t, dsn)
			b.sink.RetryBudget = 5 * time.Second
			setup(t, b)
			return b, p
		}

		// Before the first part is loaded a fault is retried.
		t.Run("BeforePartsAreRead", func(t *testing.T) {
			t.Parallel()
			b, p := setupProxied(t)
			p.breakAll()
			p.setRefuse(true)
			time.AfterFunc(300*time.Millisecond, func() { p.setRefuse(false) })
			mp := rollupParts(parts()...)
			if err := b.sink.Merge(t.Context(), rollup, rollup.Values, "c2", 0, mp); err != nil {
				t.Fatal(err)
			}
			if got := sums(t, b); got != merged || mp.Merges != 2 {
				t.Errorf("count, sum(events), commit records = %s after %d Merges, want %s after 2", got, mp.Merges, merged)
			}
		})

		// Once a part is loaded, the parts cannot be read again: the
		// bucket is not applied, and the engine merges it again.
		t.Run("AfterPartsAreRead", func(t *testing.T) {
			t.Parallel()
			b, p := setupProxied(t)
			var once sync.Once
			mp := rollupParts(parts()...)
			mp.CombineFunc = func(stored, row []any) []any {
				if mp.Merges == 2 {
					once.Do(p.breakAll)
				}
				return sumRollup(stored, row)
			}
			err := b.sink.Merge(t.Context(), rollup, rollup.Values, "c2", 0, mp)
			want := fmt.Sprintf(`sinks: merge bucket 0 of commit "c2" to table "daily_rollup" in %s: `+
				`the connection failed after the bucket's rows were read, which cannot be read again, so the bucket was not applied: `, b.sink)
			if !pg.Transient(err) || !errors.Is(err, mapreduce.ErrNotApplied) || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("Merge error:\ngot  %v\nwant one starting %s", err, want)
			}
			if got, want := sums(t, b), "[[1000 1000]] []"; got != want {
				t.Errorf("count, sum(events), commit records = %s, want %s", got, want)
			}
			if err := b.sink.Merge(t.Context(), rollup, rollup.Values, "c2", 0, rollupParts(parts()...)); err != nil {
				t.Fatal(err)
			}
			if got := sums(t, b); got != merged {
				t.Errorf("merged again: count, sum(events), commit records = %s, want %s", got, merged)
			}
		})
	})

	t.Run("CommitReplyLost", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			name    string
			commit  bool // whether the lost COMMIT took effect
			wantErr string
			sums    string
		}{
			{"Committed", true, "", merged},
			{"RolledBack", false, "the connection failed during COMMIT, which did not take effect, " +
				"so the bucket was not applied: unexpected EOF", "[[1000 1000]] []"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				b := setupPostgres(t)
				setup(t, b)
				sinks.SetPostgresCommitFunc(b.sink, func(ctx context.Context, tx pgx.Tx) error {
					end := tx.Rollback
					if tt.commit {
						end = tx.Commit
					}
					if err := end(ctx); err != nil {
						return err
					}
					return io.ErrUnexpectedEOF
				})
				err := b.sink.Merge(t.Context(), rollup, rollup.Values, "c2", 0, rollupParts(parts()...))
				if tt.wantErr == "" && err != nil {
					t.Fatal(err)
				}
				if tt.wantErr != "" && (!errors.Is(err, mapreduce.ErrNotApplied) || !strings.HasSuffix(err.Error(), tt.wantErr)) {
					t.Fatalf("Merge error:\ngot  %v\nwant one ending %s", err, tt.wantErr)
				}
				if got := sums(t, b); got != tt.sums {
					t.Errorf("count, sum(events), commit records = %s, want %s", got, tt.sums)
				}
			})
		}
	})
}

package benchmarks

import (
	"context"
	"fmt"
	"runtime/pprof"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/mrengine/mr/jobs"
	"github.com/mrengine/mr/mapreduce"
	"github.com/mrengine/mr/sinks"
	"github.com/mrengine/mr/sources"
)

// BenchmarkCompare puts mr next to what a user would otherwise write, in
// the same run, over the same events table and into the same (emptied)
// output table:
//
//   - in-db-cheap: one INSERT … SELECT … GROUP BY … ON CONFLICT statement,
//     which PostgreSQL runs on its own, with the cheapest stand-in for the
//     payload check (shape.inDBCheap, see cheapCheck): the honest
//     baseline, since no exact check in the database can be faster;
//   - in-db: the same statement with the exact check, mr_is_json_object, a
//     PL/pgSQL function, since PostgreSQL 15 has no IS JSON OBJECT
//     (shape.inDB);
//   - naive: a Go loop reading keyset chunks of 500 rows, upserting each
//     row in autocommit (events = t.events + excluded.events) and saving
//     the last id in a checkpoint table after each chunk; it runs over the
//     first naivePrefix rows and its rate is extrapolated to the table;
//   - mr: the shape's job through mapreduce.Run with a PostgreSQL source
//     and sink, Fresh, default workers. This is what ns/op times.
//   - extract: the extraction limit of mr's map phase: the job's input
//     columns read through the same source, over the same partitions and
//     with as many streams at a time as mr has workers, each row decoded
//     and then dropped (see extract).
//
// mr's output is checked against the exact in-database one, row for row.
// The metrics are per run: in-db-cheap-s, in-db-s, naive-est-s and mr-s
// in seconds, rates in rows/s, mr/in-db-cheap and mr/in-db (below 1: mr
// is faster), mr-speedup-over-naive, and mr-map/extract, how much longer
// mr's map phase took than the extraction alone.
//
//	go test ./benchmarks -run '^$' -bench Compare -benchtime 1x
func BenchmarkCompare(b *testing.B) {
	for _, sh := range shapes {
		def, err := jobs.Lookup(sh.job)
		if err != nil {
			b.Fatal(err)
		}
		for _, rows := range []int64{smallRows, heavyRows, hugeRows} {
			b.Run(fmt.Sprintf("shape=%s/%s", sh.name, rowsName(rows)), func(b *testing.B) {
				skipUnlessAllowed(b, rows)
				compare(b, seededPostgres(b, rows), sh, def)
			})
		}
	}
}

// naivePrefix is the number of rows the naive loop reads: at a few
// thousand rows per second, 20,000 rows take seconds, enough for a steady
// rate, while the whole table would take minutes to hours.
const naivePrefix = 20_000

// naiveChunk is the naive loop's keyset chunk, a typical hand-picked size.
const naiveChunk = 500

func compare(b *testing.B, ev *pgEvents, sh shape, def mapreduce.Definition) {
	ctx := context.Background()
	conn := connect(b, ev.dsn)
	src, sink := openPostgres(b, ev.dsn)
	phases := newPhaseTimer()
	cfg := benchConfig(b)
	cfg.Progress = phases
	naiveRows := min(naivePrefix, ev.rows)
	meter := newCPUMeter(b, conn)
	jsonCheck := timeJSONCheck(b, conn)

	var inDBCheap, inDB, naive, extracted, mr, mapPhase, reducePhase, goCPU, pgCPU time.Duration
	var naiveRead, groups int64
	var s mapreduce.Summary
	b.SetBytes(ev.bytes)
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		resetOutput(b, conn, sh)
		start := time.Now()
		if _, err := conn.Exec(ctx, sh.inDBCheap); err != nil {
			b.Fatalf("in-database statement with the cheap check: %v", err)
		}
		inDBCheap += time.Since(start)
		resetOutput(b, conn, sh)
		start = time.Now()
		tag, err := conn.Exec(ctx, sh.inDB)
		if err != nil {
			b.Fatalf("in-database statement: %v", err)
		}
		inDB += time.Since(start)
		groups = tag.RowsAffected()
		truth := sh.output + "_in_db"
		execAll(b, conn, "ALTER TABLE "+sh.output+" RENAME TO "+truth, sh.ddl)

		var n int64
		var d time.Duration
		pprof.Do(ctx, pprof.Labels("contender", "naive"), func(ctx context.Context) {
			n, d, err = naiveLoop(ctx, conn, sh, naiveRows)
		})
		if err != nil {
			b.Fatalf("naive loop: %v", err)
		}
		naiveRead += n
		naive += d

		pprof.Do(ctx, pprof.Labels("contender", "extract"), func(ctx context.Context) {
			d, err = extract(ctx, src, def.Spec().Input, cfg, ev.rows)
		})
		if err != nil {
			b.Fatalf("extraction: %v", err)
		}
		extracted += d

		execAll(b, conn, "DROP TABLE "+sh.output, "DROP TABLE IF EXISTS mr_bucket_commits", sh.ddl)
		meter.start()
		b.StartTimer()
		start = time.Now()
		pprof.Do(ctx, pprof.Labels("contender", "mr"), func(ctx context.Context) {
			s, err = mapreduce.Run(ctx, def, src, sink, cfg)
		})
		mr += time.Since(start)
		b.StopTimer()
		g, p := meter.stop()
		goCPU, pgCPU = goCPU+g, pgCPU+p
		mapPhase += phases.phase(mapreduce.PhaseMap)
		reducePhase += phases.phase(mapreduce.PhaseReduce)
		if err != nil {
			b.Fatalf("mr: %v", err)
		}
		if diff := tableDiff(b, conn, truth, sh.output); diff != 0 {
			b.Fatalf("mr's %s differs from the in-database result in %d rows (%s)", sh.output, diff, s)
		}
		b.StartTimer()
	}
	runs := float64(b.N)
	inDBCheaps, inDBs, mrs := inDBCheap.Seconds()/runs, inDB.Seconds()/runs, mr.Seconds()/runs
	naiveRate := float64(naiveRead) / naive.Seconds()
	naiveEst := float64(ev.rows) / naiveRate
	b.ReportMetric(float64(groups), "groups")
	b.ReportMetric(inDBCheaps, "in-db-cheap-s")
	b.ReportMetric(inDBs, "in-db-s")
	b.ReportMetric(float64(ev.rows)/inDBs, "in-db-rows/s")
	b.ReportMetric(naiveRate, "naive-rows/s")
	b.ReportMetric(naiveEst, "naive-est-s")
	b.ReportMetric(mrs, "mr-s")
	b.ReportMetric(float64(ev.rows)/mrs, "mr-rows/s")
	b.ReportMetric(mrs/inDBCheaps, "mr/in-db-cheap")
	b.ReportMetric(mrs/inDBs, "mr/in-db")
	b.ReportMetric(naiveEst/mrs, "mr-speedup-over-naive")
	b.ReportMetric(jsonCheck.Seconds(), "in-db-json-check-s")
	b.ReportMetric(mapPhase.Seconds()/runs, "mr-map-s")
	b.ReportMetric(extracted.Seconds()/runs, "extract-s")
	b.ReportMetric(float64(ev.rows)*runs/extracted.Seconds(), "extract-rows/s")
	b.ReportMetric(mapPhase.Seconds()/extracted.Seconds(), "mr-map/extract")
	b.ReportMetric(reducePhase.Seconds()/runs, "mr-reduce-s")
	b.ReportMetric(goCPU.Seconds()/runs, "mr-go-cpu-s")
	if meter.serverVisible() {
		b.ReportMetric(pgCPU.Seconds()/runs, "mr-pg-cpu-s")
	}
	b.Logf("%d groups; in-db %.2fs with the cheap check, %.2fs with the exact one (of which mr_is_json_object alone %.2fs), naive %.0f rows/s over %d rows → %.0fs for the table; "+
		"extraction alone %.2fs; mr %.2fs: map %.2fs, reduce %.2fs, CPU %.2fs in mr and %.2fs in PostgreSQL; %s",
		groups, inDBCheaps, inDBs, jsonCheck.Seconds(), naiveRate, naiveRows, naiveEst,
		extracted.Seconds()/runs, mrs, mapPhase.Seconds()/runs, reducePhase.Seconds()/runs, goCPU.Seconds()/runs, pgCPU.Seconds()/runs, s)
}

// extract reads the columns of in over the cfg.Partitions ranges that
// mr's plan takes (the source's Split), cfg.Workers of them at a time, as
// mr's map phase does (Stream, chunks of cfg.ChunkSize), and drops the
// rows: what the map phase would take if Map, the combine and the spill
// cost nothing. It checks that it read want rows and returns how long the
// reading took, without the planning.
func extract(ctx context.Context, src *sources.Postgres, in mapreduce.Input, cfg mapreduce.Config, want int64) (time.Duration, error) {
	info, err := src.Describe(ctx, in)
	if err != nil {
		return 0, err
	}
	parts, err := src.Split(ctx, in, info, cfg.Partitions)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	var read atomic.Int64
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(cfg.Workers)
	for _, p := range parts {
		g.Go(func() error {
			return src.Stream(ctx, in, p.Range, cfg.ChunkSize, mapreduce.NewBatch(in.Names()), func(b *mapreduce.Batch) error {
				read.Add(int64(b.Len()))
				return nil
			})
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	if n := read.Load(); n != want {
		return 0, fmt.Errorf("read %d rows, want %d", n, want)
	}
	return time.Since(start), nil
}

// timeJSONCheck returns how long PostgreSQL takes to call
// mr_is_json_object on every payload: the part of the in-database
// statement that PostgreSQL 15 has no built-in for (IS JSON OBJECT came
// with 16), a PL/pgSQL function whose EXCEPTION block costs a
// subtransaction per call.
func timeJSONCheck(b *testing.B, conn *pgx.Conn) time.Duration {
	b.Helper()
	start := time.Now()
	var n int64
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM events WHERE mr_is_json_object(payload)`).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

// openPostgres opens mr's PostgreSQL source and sink on dsn, closed when b
// ends.
func openPostgres(b *testing.B, dsn string) (*sources.Postgres, *sinks.Postgres) {
	b.Helper()
	src, err := sources.OpenPostgres(context.Background(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { src.Close() })
	sink, err := sinks.OpenPostgres(context.Background(), dsn)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { sink.Close() })
	return src, sink
}

// resetOutput leaves sh's output table empty and drops what earlier
// contenders left: mr's commit records, the naive loop's checkpoint and
// the in-database result kept for checking.
func resetOutput(b *testing.B, conn *pgx.Conn, sh shape) {
	b.Helper()
	execAll(b, conn,
		"DROP TABLE IF EXISTS "+sh.output+", "+sh.output+"_in_db, mr_bucket_commits, naive_checkpoint",
		sh.ddl)
}

// tableDiff returns the number of rows in one of tables a and c and not in
// the other (multisets; both have the same columns in the same order).
func tableDiff(b *testing.B, conn *pgx.Conn, a, c string) int64 {
	b.Helper()
	var n int64
	err := conn.QueryRow(context.Background(), fmt.Sprintf(`SELECT
		(SELECT count(*) FROM (TABLE %[1]s EXCEPT ALL TABLE %[2]s) d) +
		(SELECT count(*) FROM (TABLE %[2]s EXCEPT ALL TABLE %[1]s) d)`,
		pgx.Identifier{a}.Sanitize(), pgx.Identifier{c}.Sanitize())).Scan(&n)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// naiveLoop is the loop a user writes by hand without mr: keyset chunks
// of naiveChunk rows, one autocommitted upsert per good row (the payload
// checked in Go, as daily_rollup does), and a checkpoint (the last id) per
// chunk. It reads the first limit rows and returns how many it read and
// how long that took.
func naiveLoop(ctx context.Context, conn *pgx.Conn, sh shape, limit int64) (int64, time.Duration, error) {
	if _, err := conn.Exec(ctx, `CREATE TABLE naive_checkpoint (job text PRIMARY KEY, last_id bigint NOT NULL)`); err != nil {
		return 0, 0, err
	}
	if _, err := conn.Exec(ctx, `INSERT INTO naive_checkpoint VALUES ($1, 0)`, sh.job); err != nil {
		return 0, 0, err
	}
	type event struct {
		id, account int64
		ts          time.Time
		category    string
		amount      int64
		payload     *string
	}
	chunk := make([]event, 0, naiveChunk)
	start := time.Now()
	var read, last int64
	for read < limit {
		rows, err := conn.Query(ctx, `SELECT id, account_id, ts, category, amount_cents, payload
			FROM events WHERE id > $1 ORDER BY id LIMIT $2`, last, min(naiveChunk, limit-read))
		if err != nil {
			return 0, 0, err
		}
		chunk = chunk[:0]
		var e event
		_, err = pgx.ForEachRow(rows, []any{&e.id, &e.account, &e.ts, &e.category, &e.amount, &e.payload}, func() error {
			chunk = append(chunk, e)
			return nil
		})
		if err != nil {
			return 0, 0, err
		}
		if len(chunk) == 0 {
			break
		}
		for _, e := range chunk {
			if e.payload == nil || !jobs.IsJSONObject([]byte(*e.payload)) {
				continue // a dead letter: logged and skipped, in a real loop
			}
			if _, err := conn.Exec(ctx, sh.naiveUpsert, sh.naiveArgs(e.account, e.ts, e.category, e.amount)...); err != nil {
				return 0, 0, err
			}
		}
		last = chunk[len(chunk)-1].id
		if _, err := conn.Exec(ctx, `UPDATE naive_checkpoint SET last_id = $1 WHERE job = $2`, last, sh.job); err != nil {
			return 0, 0, err
		}
		read += int64(len(chunk))
	}
	return read, time.Since(start), nil
}

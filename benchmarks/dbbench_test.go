package benchmarks

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mrengine/mr/mrcli"
)

// dbbenchRows is the size of the db-benchmark table of BenchmarkDBBench.
// db-benchmark's own sizes are 1e7, 1e8 and 1e9; 1e7 is the one a laptop
// runs in minutes. As with every case of a million rows and more, the
// default skips under -short, and 10,000,000 rows and more need
// -mr.rows10m too, so that -bench . stays within go test's default
// timeout; -mr.dbbench.rows 100000 is a smoke run of a few seconds.
var dbbenchRows = flag.Int64("mr.dbbench.rows", hugeRows, "rows of the db-benchmark table of BenchmarkDBBench (a multiple of 100)")

// dbbenchPushDown is mr rollup's --push-down in BenchmarkDBBench, so that
// one command measures the questions pushed down (where auto chooses it)
// and another the same without.
var dbbenchPushDown = flag.String("mr.dbbench.pushdown", "auto", "mr rollup's --push-down in BenchmarkDBBench: auto, on or off")

// dbbenchSmallRows is the size of TestDBBench_Small: enough rows for every
// question to have groups of one row and of several (q10's groups are
// single rows, q2's, q6's and q9's one to a few, q3's and q8's about a
// hundred), few enough for the normal test run, -race included.
const dbbenchSmallRows = 20_000

// dbbenchWorkMem is the work_mem of PostgreSQL's session: mr's default
// --memory, so that neither side spills to disk for want of a setting a
// user would raise before timing a group-by. With PostgreSQL's default,
// 4MB, every question of 100,000 groups and more would spill.
const dbbenchWorkMem = "512MB"

// A dbQuestion is one of db-benchmark's ten group-by questions, asked of
// PostgreSQL in db-benchmark's own SQL and of mr rollup in the subset it
// reads. Both answers land in tables of the table's schema, named after
// the question: q1_pg and q1_mr.
type dbQuestion struct {
	name string
	keys []string
	cols []dbCol
	// pg and mr are the two statements, with %[1]s for the table; pg runs
	// as CREATE TABLE q…_pg AS pg.
	pg, mr string
	// pgAnswer is the relation mr's table is compared with, %[1]s being
	// PostgreSQL's answer table; empty means that table itself.
	pgAnswer string
}

// A dbCol is an aggregate column of an answer and how mr's value must
// agree with PostgreSQL's. With rel zero they must be equal as text
// (numerics digit for digit, arrays element by element) or both NULL;
// otherwise |mr − pg| ≤ rel·|pg| + abs, or both NULL.
type dbCol struct {
	name     string
	rel, abs float64
}

// exactCol is a column that must equal PostgreSQL's to the digit.
func exactCol(name string) dbCol { return dbCol{name: name} }

// dbbenchQuestions are db-benchmark's group-by questions, "basic" (q1–q5)
// and "advanced" (q6–q10), in the SQL of its DuckDB solution, spelled for
// PostgreSQL where DuckDB's differs (percentile_cont for quantile_cont).
var dbbenchQuestions = []dbQuestion{
	{
		name: "q1", keys: []string{"id1"}, cols: []dbCol{exactCol("v1")},
		pg: `SELECT id1, sum(v1) AS v1 FROM %[1]s GROUP BY id1`,
		mr: `SELECT id1, sum(v1) AS v1 FROM %[1]s GROUP BY id1`,
	},
	{
		name: "q2", keys: []string{"id1", "id2"}, cols: []dbCol{exactCol("v1")},
		pg: `SELECT id1, id2, sum(v1) AS v1 FROM %[1]s GROUP BY id1, id2`,
		mr: `SELECT id1, id2, sum(v1) AS v1 FROM %[1]s GROUP BY id1, id2`,
	},
	{
		name: "q3", keys: []string{"id3"}, cols: []dbCol{exactCol("v1"), exactCol("v3")},
		pg: `SELECT id3, sum(v1) AS v1, avg(v3) AS v3 FROM %[1]s GROUP BY id3`,
		mr: `SELECT id3, sum(v1) AS v1, avg(v3) AS v3 FROM %[1]s GROUP BY id3`,
	},
	{
		name: "q4", keys: []string{"id4"}, cols: []dbCol{exactCol("v1"), exactCol("v2"), exactCol("v3")},
		pg: `SELECT id4, avg(v1) AS v1, avg(v2) AS v2, avg(v3) AS v3 FROM %[1]s GROUP BY id4`,
		mr: `SELECT id4, avg(v1) AS v1, avg(v2) AS v2, avg(v3) AS v3 FROM %[1]s GROUP BY id4`,
	},
	{
		name: "q5", keys: []string{"id6"}, cols: []dbCol{exactCol("v1"), exactCol("v2"), exactCol("v3")},
		pg: `SELECT id6, sum(v1) AS v1, sum(v2) AS v2, sum(v3) AS v3 FROM %[1]s GROUP BY id6`,
		mr: `SELECT id6, sum(v1) AS v1, sum(v2) AS v2, sum(v3) AS v3 FROM %[1]s GROUP BY id6`,
	},
	{
		// mr's median is DDSketch's, whose values are within 1% of the
		// true ones (relative accuracy 0.01), and so is any interpolation
		// between two of them; abs covers v3 = 0.
		name: "q6", keys: []string{"id4", "id5"},
		cols: []dbCol{{name: "median_v3", rel: 0.01, abs: 1e-9}, exactCol("sd_v3")},
		pg:   `SELECT id4, id5, percentile_cont(0.5) WITHIN GROUP (ORDER BY v3) AS median_v3, stddev(v3) AS sd_v3 FROM %[1]s GROUP BY id4, id5`,
		mr:   `SELECT id4, id5, median(v3) AS median_v3, stddev(v3) AS sd_v3 FROM %[1]s GROUP BY id4, id5`,
	},
	{
		name: "q7", keys: []string{"id3"}, cols: []dbCol{exactCol("range_v1_v2")},
		pg: `SELECT id3, max(v1) - min(v2) AS range_v1_v2 FROM %[1]s GROUP BY id3`,
		mr: `SELECT id3, max(v1) - min(v2) AS range_v1_v2 FROM %[1]s GROUP BY id3`,
	},
	{
		// PostgreSQL's answer has a row per value (two per group, one
		// for a group of one row); it is compared as mr's is shaped, an
		// array of the largest values, greatest first. Ties are equal
		// values, so which row row_number() ranks first does not matter.
		name: "q8", keys: []string{"id6"}, cols: []dbCol{exactCol("largest2_v3")},
		pg: `SELECT id6, largest2_v3 FROM (SELECT id6, v3 AS largest2_v3,
			row_number() OVER (PARTITION BY id6 ORDER BY v3 DESC) AS order_v3
			FROM %[1]s WHERE v3 IS NOT NULL) sub_query WHERE order_v3 <= 2`,
		mr:       `SELECT id6, max_n(v3, 2) AS largest2_v3 FROM %[1]s GROUP BY id6`,
		pgAnswer: `(SELECT id6, array_agg(largest2_v3 ORDER BY largest2_v3 DESC) AS largest2_v3 FROM %[1]s GROUP BY id6)`,
	},
	{
		// corr is not exact on either side, so r2 only agrees closely:
		// PostgreSQL accumulates float8 sums row by row (Youngs–Cramer),
		// rounding at each step in an order that depends on the plan and
		// its parallel workers, while mr sums exactly and rounds once.
		// abs covers groups whose correlation is 0, where PostgreSQL's
		// rounding residue has no relative bound.
		name: "q9", keys: []string{"id2", "id4"}, cols: []dbCol{{name: "r2", rel: 1e-12, abs: 1e-15}},
		pg: `SELECT id2, id4, pow(corr(v1, v2), 2) AS r2 FROM %[1]s GROUP BY id2, id4`,
		mr: `SELECT id2, id4, corr(v1, v2)^2 AS r2 FROM %[1]s GROUP BY id2, id4`,
	},
	{
		name: "q10", keys: []string{"id1", "id2", "id3", "id4", "id5", "id6"},
		cols: []dbCol{exactCol("v3"), exactCol("count")},
		pg:   `SELECT id1, id2, id3, id4, id5, id6, sum(v3) AS v3, count(*) AS count FROM %[1]s GROUP BY id1, id2, id3, id4, id5, id6`,
		mr:   `SELECT id1, id2, id3, id4, id5, id6, sum(v3) AS v3, count(*) AS count FROM %[1]s GROUP BY id1, id2, id3, id4, id5, id6`,
	},
}

// BenchmarkDBBench runs the group-by questions of db-benchmark (H2O.ai's,
// maintained by DuckDB Labs) on its G1 table of -mr.dbbench.rows rows and
// K = 100. Each iteration asks PostgreSQL (CREATE TABLE q…_pg AS the
// question) and then mr rollup (in process, --fresh, default flags), each
// into a table dropped beforehand, and checks mr's answer against
// PostgreSQL's (see dbQuestion). ns/op times mr alone. The metrics, per
// run: x-pg-time is mr's time over PostgreSQL's (below 1: mr is faster),
// rows/s is mr's rate, pg-s and mr-s are the two times in seconds, pg-rows
// the rows of PostgreSQL's answer (the groups; two per group in q8).
//
// mr's CPU profile carries the label dbbench=q… of the question, so that
// go tool pprof -tagfocus dbbench=q10 shows one question alone.
//
//	go test ./benchmarks -run '^$' -bench DBBench -benchtime 1x -timeout 60m -mr.rows10m
func BenchmarkDBBench(b *testing.B) {
	rows := *dbbenchRows
	for _, q := range dbbenchQuestions {
		b.Run(q.name, func(b *testing.B) {
			skipUnlessAllowed(b, rows)
			a := newDBAsker(b, dbbenchData(b, rows))
			var pgTime, mrTime time.Duration
			var answer int64
			b.ReportAllocs()
			for b.Loop() {
				b.StopTimer()
				a.drop(q)
				d, n := a.askPG(q)
				pgTime, answer = pgTime+d, n
				b.StartTimer()
				mrTime += a.askMR(q)
				b.StopTimer()
				a.check(q)
				b.StartTimer()
			}
			runs := float64(b.N)
			pgs, mrs := pgTime.Seconds()/runs, mrTime.Seconds()/runs
			b.ReportMetric(mrs/pgs, "x-pg-time")
			b.ReportMetric(float64(rows)/mrs, "rows/s")
			b.ReportMetric(pgs, "pg-s")
			b.ReportMetric(mrs, "mr-s")
			b.ReportMetric(float64(answer), "pg-rows")
			// Also in the log, which a failed benchmark still prints.
			b.Logf("%s: %d rows; PostgreSQL %.2fs, mr %.2fs (%.2f×)", q.name, answer, pgs, mrs, mrs/pgs)
		})
	}
}

// dbbenchSmallFlags are mr's flags in TestDBBench_Small. A run's cost at
// this size is mostly per partition and per bucket (checkpoints, files,
// sink transactions), so four of each keep the test fast while every
// answer is still merged from several partitions; a 4MiB budget makes the
// combiners of the questions with thousands of groups (q2, q6, q9, q10)
// flush several times, so that partial states merge across files too.
var dbbenchSmallFlags = []string{"--partitions", "4", "--buckets", "4", "--memory", "4MiB"}

// TestDBBench_Small asks the ten questions of a small table and checks
// mr's answers as BenchmarkDBBench does, so that the normal test run
// proves the results the benchmark times.
func TestDBBench_Small(t *testing.T) {
	t.Parallel()
	data := dbbenchData(t, dbbenchSmallRows)
	for _, q := range dbbenchQuestions {
		t.Run(q.name, func(t *testing.T) {
			t.Parallel()
			a := newDBAsker(t, data, dbbenchSmallFlags...)
			a.askPG(q)
			a.askMR(q)
			a.check(q)
		})
	}
}

// A dbAsker asks questions of one db-benchmark table, on a connection of
// its own and in a work directory of its own, both closed or removed when
// its test ends.
type dbAsker struct {
	tb      testing.TB
	data    *dbbenchTable
	conn    *pgx.Conn
	workdir string
	flags   []string // mr rollup's, beside the ones every question needs
}

func newDBAsker(tb testing.TB, data *dbbenchTable, flags ...string) *dbAsker {
	tb.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, data.dsn)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(ctx, "SET work_mem = '"+dbbenchWorkMem+"'"); err != nil {
		tb.Fatal(err)
	}
	return &dbAsker{tb: tb, data: data, conn: conn, workdir: tb.TempDir(), flags: flags}
}

func (a *dbAsker) pgTable(q dbQuestion) string { return q.name + "_pg" }
func (a *dbAsker) mrTable(q dbQuestion) string { return q.name + "_mr" }

// drop removes both answers to q.
func (a *dbAsker) drop(q dbQuestion) {
	a.tb.Helper()
	stmt := "DROP TABLE IF EXISTS " + a.pgTable(q) + ", " + a.mrTable(q)
	if _, err := a.conn.Exec(context.Background(), stmt); err != nil {
		a.tb.Fatalf("%s: %v", stmt, err)
	}
}

// askPG has PostgreSQL answer q and returns how long it took and the
// number of rows of its answer.
func (a *dbAsker) askPG(q dbQuestion) (time.Duration, int64) {
	a.tb.Helper()
	stmt := "CREATE TABLE " + a.pgTable(q) + " AS " + fmt.Sprintf(q.pg, a.data.name)
	start := time.Now()
	tag, err := a.conn.Exec(context.Background(), stmt)
	if err != nil {
		a.tb.Fatalf("%s: PostgreSQL: %v", q.name, err)
	}
	return time.Since(start), tag.RowsAffected()
}

// askMR has mr rollup answer q, through the command line a user types,
// and returns how long it took.
func (a *dbAsker) askMR(q dbQuestion) time.Duration {
	a.tb.Helper()
	args := append([]string{"mr", "rollup", "--source", a.data.dsn, "--into", a.mrTable(q),
		"--workdir", a.workdir, "--fresh", "--push-down", *dbbenchPushDown}, a.flags...)
	args = append(args, fmt.Sprintf(q.mr, a.data.name))
	var out, errOut bytes.Buffer
	var code int
	start := time.Now()
	pprof.Do(context.Background(), pprof.Labels("contender", "mr", "dbbench", q.name), func(ctx context.Context) {
		code = mrcli.Run(ctx, args, &out, &errOut)
	})
	d := time.Since(start)
	if code != mrcli.ExitOK {
		a.tb.Fatalf("%s: mr rollup exited with %d:\n%s%s", q.name, code, out.String(), strings.TrimSpace(errOut.String()))
	}
	// The summary line (spilled bytes, groups written) is the last one.
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	a.tb.Logf("%s: %s", q.name, strings.TrimSpace(lines[len(lines)-1]))
	return d
}

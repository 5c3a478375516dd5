package mrcli

import (
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mrengine/mr/internal/crashpoint"
	"github.com/mrengine/mr/internal/pgtest"
	"github.com/mrengine/mr/rollup/agg"
)

// seedOrders creates the orders table of the issue that asked for mr
// rollup, deterministically: numeric(12,2) totals (some NULL), statuses
// (some 'void'), a year of timestamps.
func seedOrders(t *testing.T, rows int) string {
	t.Helper()
	dsn := pgtest.DSN(t)
	db := pgtest.PoolFor(t, dsn)
	ctx := context.Background()
	for _, q := range []string{
		`CREATE TABLE orders (id bigserial PRIMARY KEY, customer_id int, created_at timestamptz, status text, total numeric(12,2))`,
		`SELECT setseed(0.42)`,
	} {
		if _, err := db.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	_, err := db.Exec(ctx, `INSERT INTO orders (customer_id, created_at, status, total)
		SELECT 1 + (random() * 40)::int,
		       timestamptz '2025-01-01 00:00:00+00' + random() * interval '365 days',
		       (ARRAY['paid', 'void', 'refunded', 'open'])[1 + (random() * 3)::int],
		       CASE WHEN random() < 0.05 THEN NULL ELSE round((random() * 10000)::numeric, 2) END
		FROM generate_series(1, $1)`, rows)
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// ordersRollup is the rollup of the issue that asked for mr rollup, with
// every kind of aggregate.
const ordersRollup = `SELECT customer_id, date_trunc('month', created_at) AS month,
		count(*) AS orders, count(total) AS priced, sum(total) AS total, avg(total) AS mean,
		min(total) AS least, max(total) AS most, stddev(total) AS sd, max_n(total, 2) AS top2,
		max(total) - min(total) AS spread,
		approx_count_distinct(status) AS statuses, approx_quantile(total, 0.99) AS p99
	FROM orders WHERE status <> 'void' GROUP BY 1, 2`

// checkOrdersRollup compares table, the output of ordersRollup, with
// PostgreSQL's GROUP BY over the same rows: exact for counts, sums,
// averages (digit for digit), extremes, top-2 and stddev; within the
// sketches' stated errors for approx_count_distinct and approx_quantile.
func checkOrdersRollup(t *testing.T, dsn, table string) {
	t.Helper()
	db := pgtest.PoolFor(t, dsn)
	var groups, exactBad, approxBad int
	err := db.QueryRow(context.Background(), `WITH truth AS (
			SELECT customer_id, date_trunc('month', created_at, 'UTC') AS month,
				count(*) AS orders, count(total) AS priced, sum(total) AS total, avg(total) AS mean,
				min(total) AS least, max(total) AS most, stddev(total) AS sd,
				(array_agg(total ORDER BY total DESC) FILTER (WHERE total IS NOT NULL))[1:2] AS top2,
				max(total) - min(total) AS spread,
				count(DISTINCT status) AS statuses,
				percentile_cont(0.99) WITHIN GROUP (ORDER BY total) AS p99
			FROM orders WHERE status <> 'void' GROUP BY 1, 2)
		SELECT count(*),
			count(*) FILTER (WHERE m.customer_id IS NULL OR t.customer_id IS NULL
				OR (m.orders, m.priced, m.total, m.mean, m.least, m.most, m.sd, m.top2, m.spread)
				IS DISTINCT FROM (t.orders, t.priced, t.total, t.mean, t.least, t.most, t.sd, t.top2, t.spread)
				OR m.total::text IS DISTINCT FROM t.total::text OR m.mean::text IS DISTINCT FROM t.mean::text),
			count(*) FILTER (WHERE m.statuses <> t.statuses OR abs(m.p99 - t.p99) > 0.01 * abs(t.p99) + 1e-9)
		FROM `+table+` m FULL JOIN truth t USING (customer_id, month)`).Scan(&groups, &exactBad, &approxBad)
	if err != nil {
		t.Fatal(err)
	}
	if groups < 400 || exactBad != 0 || approxBad != 0 {
		t.Errorf("%d groups, %d differ from PostgreSQL's exact results, %d beyond the sketches' errors", groups, exactBad, approxBad)
	}
}

// TestRollup_Orders runs the rollup and checks every column
// against PostgreSQL's GROUP BY over the same rows: exact for counts,
// sums, averages, extremes, top-2 and stddev, within the sketches' stated
// errors for approx_count_distinct and approx_quantile.
func TestRollup_Orders(t *testing.T) {
	t.Parallel()
	dsn := seedOrders(t, 20_000)
	db := pgtest.PoolFor(t, dsn)
	r := runMR(t, "rollup", "--source", dsn, "--into", "monthly_totals", "--workdir", filepath.Join(t.TempDir(), "mr"),
		"--partitions", "4", "--buckets", "3", ordersRollup)
	if r.code != 0 {
		t.Fatalf("mr rollup exited %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	checkOrdersRollup(t, dsn, "monthly_totals")
	var types string
	err := db.QueryRow(context.Background(), `SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
		FROM pg_attribute WHERE attrelid = 'monthly_totals'::regclass AND attnum > 0 AND NOT attisdropped`).Scan(&types)
	if err != nil {
		t.Fatal(err)
	}
	want := "customer_id integer, month timestamp with time zone, orders bigint, priced bigint, total numeric, mean numeric, " +
		"least numeric, most numeric, sd numeric, top2 numeric[], spread numeric, statuses bigint, p99 double precision"
	if types != want {
		t.Errorf("output columns:\n got %s\nwant %s", types, want)
	}

	// The same command again finds the run finished and changes nothing.
	again := runMR(t, "rollup", "--source", dsn, "--into", "monthly_totals", "--workdir", filepath.Join(t.TempDir(), "mr"),
		"--partitions", "4", "--buckets", "3", "--explain", ordersRollup)
	for _, want := range []string{"read-only transaction", `WHERE "id" >= $1 AND "id" <= $2 AND (status <> 'void')`,
		"key month timestamp with time zone: mr: date_trunc('month', …) in UTC", "CREATE TABLE monthly_totals ("} {
		if !strings.Contains(again.stdout, want) {
			t.Errorf("--explain does not show %q:\n%s", want, again.stdout)
		}
	}
}

// TestRollup_Errors shows the message of each mistake a user can make in
// a rollup, and that nothing ran.
func TestRollup_Errors(t *testing.T) {
	t.Parallel()
	dsn := seedOrders(t, 10)
	for _, tt := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"syntax", []string{"SELECT customer_id, sum(total) FROM orders GROUP BY 1 ORDER BY 2"}, ExitUsage, "ORDER BY"},
		{"no into", []string{"--into", "", "SELECT customer_id, sum(total) FROM orders GROUP BY 1"}, ExitUsage, "missing --into"},
		{"missing column", []string{"SELECT customer_id, sum(price) FROM orders GROUP BY 1"}, ExitFailed, `column "price" does not exist`},
		{"text sum", []string{"SELECT customer_id, sum(status) FROM orders GROUP BY 1"}, ExitUsage, "sum"},
		{"trunc of a number", []string{"SELECT date_trunc('day', total) AS d, count(*) AS n FROM orders GROUP BY 1"}, ExitUsage, "needs a timestamp or a date"},
		{"no group by", []string{"SELECT count(*) AS n FROM orders"}, ExitUsage, "needs GROUP BY keys"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"rollup", "--source", dsn, "--into", "out", "--workdir", filepath.Join(t.TempDir(), "mr")}, tt.args...)
			r := runMR(t, args...)
			if r.code != tt.code || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, want %d; stderr:\n%s\nwant it to mention %q", r.code, tt.code, r.stderr, tt.want)
			}
			t.Logf("%s", r.stderr)
		})
	}
}

// TestRollup_Crash kills mr rollup for real (kill -9) where a crash
// could lose or repeat work, after a map task's spill and after a sink
// commit, and checks that the resumed run writes exactly PostgreSQL's
// answer.
func TestRollup_Crash(t *testing.T) {
	t.Parallel()
	for _, point := range []string{crashpoint.MapSpilled + ":3", crashpoint.BucketApplied + ":2"} {
		t.Run(point, func(t *testing.T) {
			t.Parallel()
			dsn := seedOrders(t, 20_000)
			args := []string{"rollup", "--source", dsn, "--into", "monthly_totals", "--workdir", t.TempDir(),
				"--partitions", "6", "--buckets", "4", "--workers", "2",
				strings.Join(strings.Fields(ordersRollup), " ")} // a child's arguments are lines
			out, err := mrCommand(t, []string{crashpoint.Env + "=" + point}, args...).CombinedOutput()
			if !killed(err) {
				t.Fatalf("mr rollup was not killed at %s: %v\n%s", point, err, out)
			}
			r := runMR(t, args...)
			if r.code != ExitOK || !strings.Contains(r.stdout, "(resumed") {
				t.Fatalf("the run after the crash: exit %d, did not resume?\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
			}
			checkOrdersRollup(t, dsn, "monthly_totals")
		})
	}
}

// TestRollup_KeepStates checks that --keep-states writes each group's
// states, which decode to the group's results.
func TestRollup_KeepStates(t *testing.T) {
	t.Parallel()
	dsn := seedOrders(t, 2_000)
	r := runMR(t, "rollup", "--source", dsn, "--into", "kept", "--workdir", t.TempDir(), "--keep-states",
		"SELECT customer_id, count(*) AS orders, sum(total) AS total FROM orders GROUP BY 1")
	if r.code != ExitOK {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	count, err := agg.Resolve("count", false, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := agg.Resolve("sum", false, []agg.ArgType{agg.MustParseType("numeric(12,2)")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := pgtest.PoolFor(t, dsn).Query(context.Background(), `SELECT orders, total::text, mr_states FROM kept`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var orders int64
		var total *string
		var states []byte
		if err := rows.Scan(&orders, &total, &states); err != nil {
			t.Fatal(err)
		}
		if len(states) == 0 || states[0] != 1 {
			t.Fatalf("mr_states %x: want format 1", states)
		}
		got := make([]agg.Value, 2)
		b := states[1:]
		for i, fn := range []*agg.Func{count, sum} {
			l, w := binary.Uvarint(b)
			s, err := fn.Decode(b[w : w+int(l)])
			if err != nil {
				t.Fatal(err)
			}
			if got[i], err = s.Result(); err != nil {
				t.Fatal(err)
			}
			b = b[w+int(l):]
		}
		if got[0].Int != orders || total != nil && got[1].String() != *total || len(b) != 0 {
			t.Errorf("states give %v, the row holds %d, %v", got, orders, *total)
		}
		n++
	}
	if rows.Err() != nil || n == 0 {
		t.Fatalf("%d rows: %v", n, rows.Err())
	}
}

// TestRollup_PushDown runs one rollup with its partial aggregation pushed
// down to PostgreSQL and without, and checks that both write PostgreSQL's
// answer and the very same states.
func TestRollup_PushDown(t *testing.T) {
	t.Parallel()
	dsn := seedOrders(t, 20_000)
	db := pgtest.PoolFor(t, dsn)
	const query = `SELECT customer_id, date_trunc('month', created_at) AS month, status,
		count(*) AS orders, count(total) AS priced, sum(total) AS total, avg(total) AS mean,
		min(total) AS least, max(total) AS most, stddev(total) AS sd, sum(customer_id) AS ids, variance(customer_id) AS var
	FROM orders WHERE total > 10 GROUP BY 1, 2, 3`
	for _, mode := range []string{"on", "off"} {
		r := runMR(t, "rollup", "--source", dsn, "--into", "pushed_"+mode, "--workdir", t.TempDir(), "--partitions", "5",
			"--keep-states", "--push-down", mode, "--explain", query)
		if want := "push-down " + mode; r.code != ExitOK || !strings.Contains(r.stdout, want) {
			t.Fatalf("--explain with --push-down %s: exit %d, want %q in\n%s%s", mode, r.code, want, r.stdout, r.stderr)
		}
		// A small budget makes the combiners spill mid-range, which a
		// pushed-down range may do without committing.
		if r := runMR(t, "rollup", "--source", dsn, "--into", "pushed_"+mode, "--workdir", t.TempDir(), "--partitions", "5",
			"--memory", "1MiB", "--keep-states", "--push-down", mode, query); r.code != ExitOK {
			t.Fatalf("--push-down %s: exit %d\n%s", mode, r.code, r.stderr)
		}
	}
	var groups, bad, states int
	err := db.QueryRow(context.Background(), `WITH truth AS (
			SELECT customer_id, date_trunc('month', created_at, 'UTC') AS month, status,
				count(*) AS orders, count(total) AS priced, sum(total) AS total, avg(total) AS mean,
				min(total) AS least, max(total) AS most, stddev(total) AS sd, sum(customer_id) AS ids, variance(customer_id) AS var
			FROM orders WHERE total > 10 GROUP BY 1, 2, 3)
		SELECT count(*),
			count(*) FILTER (WHERE on_.customer_id IS NULL OR t.customer_id IS NULL
				OR (on_.orders, on_.priced, on_.total::text, on_.mean::text, on_.least, on_.most, on_.sd::text, on_.ids::text, on_.var::text)
				IS DISTINCT FROM (t.orders, t.priced, t.total::text, t.mean::text, t.least, t.most, t.sd::text, t.ids::text, t.var::text)),
			count(*) FILTER (WHERE on_.mr_states IS DISTINCT FROM off.mr_states)
		FROM pushed_on on_ FULL JOIN truth t USING (customer_id, month, status) FULL JOIN pushed_off off USING (customer_id, month, status)`).
		Scan(&groups, &bad, &states)
	if err != nil {
		t.Fatal(err)
	}
	if groups < 1000 || bad != 0 || states != 0 {
		t.Errorf("%d groups: %d differ from PostgreSQL's, %d have other states pushed down than not", groups, bad, states)
	}

	// Pushed down, a run takes a range per worker unless told otherwise.
	r := runMR(t, "rollup", "--source", dsn, "--into", "pushed_on", "--workdir", t.TempDir(), "--workers", "3",
		"--keep-states", "--push-down", "on", "--explain", query)
	if r.code != ExitOK || !strings.Contains(r.stdout, " 3 partitions") {
		t.Errorf("--push-down on --workers 3 without --partitions: exit %d, want 3 partitions in\n%s%s", r.code, r.stdout, r.stderr)
	}

	// What cannot be pushed down says why, and --push-down on refuses it.
	r = runMR(t, "rollup", "--source", dsn, "--into", "sketch", "--workdir", t.TempDir(), "--push-down", "on",
		"SELECT status, median(total) AS m FROM orders GROUP BY 1")
	if r.code == ExitOK || !strings.Contains(r.stderr, "has no exact partial aggregate in SQL") {
		t.Errorf("--push-down on of a median: exit %d\n%s", r.code, r.stderr)
	}

	// A compound cursor reads rows: auto says why it does not push down,
	// and the result is PostgreSQL's.
	r = runMR(t, "rollup", "--source", dsn, "--into", "by_time", "--workdir", t.TempDir(), "--cursor", "created_at,id", "--explain",
		"SELECT status, count(*) AS n, sum(total) AS total FROM orders GROUP BY 1")
	if r.code != ExitOK || !strings.Contains(r.stdout, "push-down off: the cursor created_at,id is compound") {
		t.Errorf("--explain with a compound cursor: exit %d, want push-down off and why\n%s%s", r.code, r.stdout, r.stderr)
	}
	if r := runMR(t, "rollup", "--source", dsn, "--into", "by_time", "--workdir", t.TempDir(), "--cursor", "created_at,id", "--chunk-size", "7",
		"SELECT status, count(*) AS n, sum(total) AS total FROM orders GROUP BY 1"); r.code != ExitOK {
		t.Fatalf("rollup with a compound cursor: exit %d\n%s", r.code, r.stderr)
	}
	var differ int
	err = db.QueryRow(context.Background(), `SELECT count(*) FROM (
		(SELECT status, n, total FROM by_time EXCEPT ALL SELECT status, count(*), sum(total) FROM orders GROUP BY 1)
		UNION ALL (SELECT status, count(*), sum(total) FROM orders GROUP BY 1 EXCEPT ALL SELECT status, n, total FROM by_time)) d`).Scan(&differ)
	if err != nil || differ != 0 {
		t.Errorf("the rollup with a compound cursor differs from PostgreSQL's in %d rows (%v)", differ, err)
	}
}

// TestRollup_DeadLetters corrupts rows for real (NULL keys), checks that
// the run counts them as failed and keeps them in the dead-letter queue,
// then fixes them and replays: the output is then PostgreSQL's answer.
func TestRollup_DeadLetters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dsn := seedOrders(t, 20_000)
	db := pgtest.PoolFor(t, dsn)
	if _, err := db.Exec(ctx, `UPDATE orders SET customer_id = NULL WHERE id % 2000 = 7`); err != nil {
		t.Fatal(err)
	}
	args := []string{"--source", dsn, "--into", "monthly_totals", "--workdir", t.TempDir(), "--partitions", "4",
		"--push-down", "off", ordersRollup}
	r := runMR(t, append([]string{"rollup"}, args...)...)
	// Of the 10 rows, those the WHERE keeps fail; 7 in this seed.
	if r.code != ExitOK || !strings.Contains(r.stdout, " 7 failed") {
		t.Fatalf("exit %d, want 0 with 7 failed rows\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	list := runMR(t, "dlq", "list", "--workdir", args[5])
	if !strings.Contains(list.stdout, "key customer_id is NULL") {
		t.Errorf("mr dlq list does not show why the rows failed:\n%s%s", list.stdout, list.stderr)
	}
	if _, err := db.Exec(ctx, `UPDATE orders SET customer_id = 1 WHERE customer_id IS NULL`); err != nil {
		t.Fatal(err)
	}
	replay := runMR(t, append([]string{"dlq", "replay", "--rollup"}, args...)...)
	if replay.code != ExitOK {
		t.Fatalf("mr dlq replay --rollup: exit %d\n%s%s", replay.code, replay.stdout, replay.stderr)
	}
	checkOrdersRollup(t, dsn, "monthly_totals")
}

// TestRollup_ExplainWritesNothing checks that mr rollup --explain creates
// nothing: no run state in --workdir, no table in the database.
func TestRollup_ExplainWritesNothing(t *testing.T) {
	t.Parallel()
	dsn := seedOrders(t, 100)
	workdir := filepath.Join(t.TempDir(), "mr")
	r := runMR(t, "rollup", "--source", dsn, "--into", "totals", "--workdir", workdir, "--explain",
		"SELECT customer_id, count(*) FROM orders GROUP BY 1")
	if r.code != ExitOK || !strings.Contains(r.stdout, "CREATE TABLE totals (") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(workdir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("--explain made %s (%v)", workdir, err)
	}
	var tables string
	err := pgtest.PoolFor(t, dsn).QueryRow(context.Background(),
		`SELECT string_agg(tablename, ', ' ORDER BY tablename) FROM pg_tables WHERE schemaname = current_schema()`).Scan(&tables)
	if err != nil {
		t.Fatal(err)
	}
	if tables != "orders" {
		t.Errorf("after --explain the schema holds %s, want orders alone", tables)
	}
}

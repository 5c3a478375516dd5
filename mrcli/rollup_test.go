package mrcli

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mrengine/mr/internal/pgtest"
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

// TestRollup_Orders runs the rollup and checks every column
// against PostgreSQL's GROUP BY over the same rows: exact for counts,
// sums, averages, extremes, top-2 and stddev, within the sketches' stated
// errors for approx_count_distinct and approx_quantile.
func TestRollup_Orders(t *testing.T) {
	t.Parallel()
	dsn := seedOrders(t, 20_000)
	db := pgtest.PoolFor(t, dsn)
	ctx := context.Background()
	query := `SELECT customer_id, date_trunc('month', created_at) AS month,
		count(*) AS orders, count(total) AS priced, sum(total) AS total, avg(total) AS mean,
		min(total) AS least, max(total) AS most, stddev(total) AS sd, max_n(total, 2) AS top2,
		max(total) - min(total) AS spread,
		approx_count_distinct(status) AS statuses, approx_quantile(total, 0.99) AS p99
	FROM orders WHERE status <> 'void' GROUP BY 1, 2`
	r := runMR(t, "rollup", "--source", dsn, "--into", "monthly_totals", "--workdir", filepath.Join(t.TempDir(), "mr"),
		"--partitions", "4", "--buckets", "3", query)
	if r.code != 0 {
		t.Fatalf("mr rollup exited %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	var groups, exactBad, approxBad int
	err := db.QueryRow(ctx, `WITH truth AS (
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
		FROM monthly_totals m FULL JOIN truth t USING (customer_id, month)`).Scan(&groups, &exactBad, &approxBad)
	if err != nil {
		t.Fatal(err)
	}
	if groups < 400 || exactBad != 0 || approxBad != 0 {
		t.Errorf("%d groups, %d differ from PostgreSQL's exact results, %d beyond the sketches' errors\n%s", groups, exactBad, approxBad, r.stdout)
	}
	var types string
	err = db.QueryRow(ctx, `SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum)
		FROM pg_attribute WHERE attrelid = 'monthly_totals'::regclass AND attnum > 0 AND NOT attisdropped`).Scan(&types)
	if err != nil {
		t.Fatal(err)
	}
	want := "customer_id bigint, month timestamp with time zone, orders bigint, priced bigint, total numeric, mean numeric, " +
		"least numeric, most numeric, sd numeric, top2 numeric[], spread numeric, statuses bigint, p99 double precision"
	if types != want {
		t.Errorf("output columns:\n got %s\nwant %s", types, want)
	}

	// The same command again finds the run finished and changes nothing.
	again := runMR(t, "rollup", "--source", dsn, "--into", "monthly_totals", "--workdir", filepath.Join(t.TempDir(), "mr"),
		"--partitions", "4", "--buckets", "3", "--explain", query)
	for _, want := range []string{"read-only transaction", `WHERE "id" >= $1 AND "id" < $2 AND (status <> 'void')`,
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
		{"trunc of text", []string{"SELECT date_trunc('day', status) AS d, count(*) AS n FROM orders GROUP BY 1"}, ExitUsage, "needs a timestamp or a date"},
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

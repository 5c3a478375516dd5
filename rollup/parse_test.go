package rollup_test

import (
	"testing"

	"github.com/mrengine/mr/rollup"
)

// parseTests are a query for each construct of the language and what
// Parse understands of it (see dump).
var parseTests = []struct{ name, sql, want string }{
	{"Lexing/SingleQuotes",
		`SELECT 'it''s' AS s, count(*) FROM t WHERE name <> 'O''Brien' GROUP BY 1`,
		`1 s: sql "'it''s'"
2 count: count(*)
from: "t"
where: name <> 'O''Brien'
group by: 1`},
	{"Lexing/EStringUnit",
		`SELECT date_trunc(E'mon\x74h', ts) AS m, count(*) FROM t GROUP BY 1`,
		`1 m: date_trunc(month, column "ts")
2 count: count(*)
from: "t"
group by: 1`},
	{"Lexing/DollarQuotedUnits",
		`SELECT date_trunc($$day$$, ts) AS d, date_trunc($u$week$u$, ts) AS w, count(*) FROM t GROUP BY 1, 2`,
		`1 d: date_trunc(day, column "ts")
2 w: date_trunc(week, column "ts")
3 count: count(*)
from: "t"
group by: 1 2`},
	{"Lexing/UnicodeStringUnit",
		`SELECT date_trunc(U&'\0064ay', ts) AS d, count(*) FROM t GROUP BY 1`,
		`1 d: date_trunc(day, column "ts")
2 count: count(*)
from: "t"
group by: 1`},
	{"Lexing/StringContinuation",
		`SELECT date_trunc('mo'
  'nth', ts) AS m, count(*) FROM t GROUP BY 1`,
		`1 m: date_trunc(month, column "ts")
2 count: count(*)
from: "t"
group by: 1`},
	{"Lexing/QuotedIdentifiers",
		`SELECT "Customer ID", "a""b", U&"d\0061ta", sum("Total") AS "Sum" FROM "Orders" GROUP BY 1, 2, 3`,
		`1 Customer ID: column "Customer ID"
2 a"b: column "a\"b"
3 data: column "data"
4 Sum: sum(column "Total")
from: "Orders"
group by: 1 2 3`},
	{"Lexing/Numbers",
		`SELECT approx_quantile(x, .5) AS a, approx_quantile(x, 1e-3) AS b, approx_quantile(x, 0.99) AS c, max_n(x, 0x0A) AS d, min_n(x, 1_0) AS e, sum(x) * 1.5e3 AS f FROM t`,
		`1 a: approx_quantile(column "x", num 0.5)
2 b: approx_quantile(column "x", num 1e-3)
3 c: approx_quantile(column "x", num 0.99)
4 d: max_n(column "x", int 10)
5 e: min_n(column "x", int 10)
6 f: (sum(column "x") * num 1.5e3)
from: "t"`},
	{"Lexing/Casts",
		`SELECT ts::timestamp with time zone AS t, x::double precision AS d, CAST(y AS int) AS y, '{1}'::int[] AS arr, z::character varying(10) AS z, sum(x::numeric(12,2)) AS s FROM t GROUP BY 1, 2, 3, 4, 5`,
		`1 t: sql "ts::timestamp with time zone"
2 d: sql "x::double precision"
3 y: sql "CAST(y AS int)"
4 arr: sql "'{1}'::int[]"
5 z: sql "z::character varying(10)"
6 s: sum(sql "x::numeric(12,2)")
from: "t"
group by: 1 2 3 4 5`},
	{"Lexing/Comments",
		`SELECT k, -- the key
  count(*) /* rows /* nested */ */ AS n
FROM t WHERE a > 1 -- first
  AND /* inline */ b < 2 -- last
GROUP BY k -- end`,
		`1 k: column "k"
2 n: count(*)
from: "t"
where: a > 1 -- first
  AND /* inline */ b < 2
group by: 1`},
	{"Lexing/Operators",
		`SELECT count(*) FROM t WHERE a*-1 > 0 AND a != b AND x ~* 'foo' AND y @> '{1}' AND z |/ 4 > 1 AND (m # n) = 0 AND s || 'x' LIKE 'a%'`,
		`1 count: count(*)
from: "t"
where: a*-1 > 0 AND a != b AND x ~* 'foo' AND y @> '{1}' AND z |/ 4 > 1 AND (m # n) = 0 AND s || 'x' LIKE 'a%'`},
	{"Lexing/SemicolonAndCase",
		`select K, COUNT(*) from T group BY k ;`,
		`1 k: column "k"
2 count: count(*)
from: "t"
group by: 1`},
	{"Aggregates/EveryFunction",
		`SELECT count(*) AS a, count(x) AS b, count(DISTINCT x) AS c, count(ALL x) AS d, sum(x) AS e, min(x) AS f, max(x) AS g, avg(x) AS h, stddev(x) AS i, stddev_samp(x) AS j, stddev_pop(x) AS k, variance(x) AS l, var_samp(x) AS m, var_pop(x) AS n, corr(y, x) AS o, approx_count_distinct(x) AS p, approx_quantile(x, 0.5) AS q, median(x) AS r, max_n(x, 3) AS s, min_n(x, 1) AS t FROM t`,
		`1 a: count(*)
2 b: count(column "x")
3 c: count(DISTINCT column "x")
4 d: count(column "x")
5 e: sum(column "x")
6 f: min(column "x")
7 g: max(column "x")
8 h: avg(column "x")
9 i: stddev(column "x")
10 j: stddev_samp(column "x")
11 k: stddev_pop(column "x")
12 l: variance(column "x")
13 m: var_samp(column "x")
14 n: var_pop(column "x")
15 o: corr(column "y", column "x")
16 p: approx_count_distinct(column "x")
17 q: approx_quantile(column "x", num 0.5)
18 r: median(column "x")
19 s: max_n(column "x", int 3)
20 t: min_n(column "x", int 1)
from: "t"`},
	{"Aggregates/CaseInsensitiveAndDefaultNames",
		`SELECT k, COUNT(*), Sum(x), pg_catalog.max(x), "min"(x) FROM t GROUP BY k`,
		`1 k: column "k"
2 count: count(*)
3 sum: sum(column "x")
4 max: max(column "x")
5 min: min(column "x")
from: "t"
group by: 1`},
	{"Aggregates/Arguments",
		`SELECT k, sum(price * (1 - discount)) AS revenue, sum(CASE WHEN status = 'paid' THEN total END) AS paid, count(DISTINCT lower(email)) AS emails, avg(extract(epoch FROM t2 - t1)) AS secs, sum((x)) AS px FROM t GROUP BY k`,
		`1 k: column "k"
2 revenue: sum(sql "price * (1 - discount)")
3 paid: sum(sql "CASE WHEN status = 'paid' THEN total END")
4 emails: count(DISTINCT sql "lower(email)")
5 secs: avg(sql "extract(epoch FROM t2 - t1)")
6 px: sum(column "x")
from: "t"
group by: 1`},
	{"Aggregates/Arithmetic",
		`SELECT max(v1) - min(v2) AS a, corr(v1, v2)^2 AS b, sum(a)/count(*) AS c, -sum(x) AS d, (sum(a) + 1) * 2 AS e, sum(a) ^ 2 ^ 3 AS f, -sum(x)^2 AS g, sum(x) * -1 AS h, +sum(x) AS i, 2 - - sum(x) AS j FROM t`,
		`1 a: (max(column "v1") - min(column "v2"))
2 b: (corr(column "v1", column "v2") ^ int 2)
3 c: (sum(column "a") / count(*))
4 d: (-sum(column "x"))
5 e: ((sum(column "a") + int 1) * int 2)
6 f: ((sum(column "a") ^ int 2) ^ int 3)
7 g: ((-sum(column "x")) ^ int 2)
8 h: (sum(column "x") * int -1)
9 i: sum(column "x")
10 j: (int 2 - (-sum(column "x")))
from: "t"`},
	{"Aggregates/Precedence",
		`SELECT sum(a) + sum(b) * sum(c) AS x, (sum(a) + sum(b)) * sum(c) AS y, sum(a) - sum(b) - sum(c) AS z, sum(a) / sum(b) ^ 2 AS w FROM t`,
		`1 x: (sum(column "a") + (sum(column "b") * sum(column "c")))
2 y: ((sum(column "a") + sum(column "b")) * sum(column "c"))
3 z: ((sum(column "a") - sum(column "b")) - sum(column "c"))
4 w: (sum(column "a") / (sum(column "b") ^ int 2))
from: "t"`},
	{"Aggregates/QualifiedColumns",
		`SELECT o.k, sum(o.total) AS a, sum(orders.total) AS b, sum(other.total) AS c, sum("o"."total") AS d FROM orders o GROUP BY o.k`,
		`1 k: column "k"
2 a: sum(column "total")
3 b: sum(sql "orders.total")
4 c: sum(sql "other.total")
5 d: sum(column "total")
from: "orders" AS "o"
group by: 1`},
	{"Aggregates/TableQualified",
		`SELECT orders.k, sum(public.orders.total) AS a, sum(orders.total) AS b FROM public.orders GROUP BY 1`,
		`1 k: column "k"
2 a: sum(column "total")
3 b: sum(column "total")
from: "public"."orders"
group by: 1`},
	{"Keys/Columns",
		`SELECT a, "B", t.c, (d), count(*) FROM t GROUP BY a, "B", c, d`,
		`1 a: column "a"
2 B: column "B"
3 c: column "c"
4 d: column "d"
5 count: count(*)
from: "t"
group by: 1 2 3 4`},
	{"Keys/DateTruncUnits",
		`SELECT date_trunc('Month', ts) AS a, date_trunc('mon', ts) AS b, date_trunc('microseconds', ts) AS c, date_trunc('qtr', ts) AS d, date_trunc('millennium', ts) AS e, date_trunc('hrs', ts) AS f, date_trunc('MILLISECOND', ts) AS g, date_trunc('decade', ts) AS h, date_trunc('century', ts) AS i, date_trunc('week', ts) AS j, date_trunc('year', ts) AS k, date_trunc('second', ts) AS l, date_trunc('minute', ts) AS m, date_trunc('d', ts) AS n FROM t GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14`,
		`1 a: date_trunc(month, column "ts")
2 b: date_trunc(month, column "ts")
3 c: date_trunc(microseconds, column "ts")
4 d: date_trunc(quarter, column "ts")
5 e: date_trunc(millennium, column "ts")
6 f: date_trunc(hour, column "ts")
7 g: date_trunc(milliseconds, column "ts")
8 h: date_trunc(decade, column "ts")
9 i: date_trunc(century, column "ts")
10 j: date_trunc(week, column "ts")
11 k: date_trunc(year, column "ts")
12 l: date_trunc(second, column "ts")
13 m: date_trunc(minute, column "ts")
14 n: date_trunc(day, column "ts")
from: "t"
group by: 1 2 3 4 5 6 7 8 9 10 11 12 13 14`},
	{"Keys/DateTruncZoneAndArg",
		`SELECT date_trunc('day', ts, 'Europe/Paris') AS d, pg_catalog.date_trunc('hour', created_at AT TIME ZONE 'UTC'), count(*) FROM t GROUP BY 1, 2`,
		`1 d: date_trunc(day, column "ts", zone "Europe/Paris")
2 date_trunc: date_trunc(hour, sql "created_at AT TIME ZONE 'UTC'")
3 count: count(*)
from: "t"
group by: 1 2`},
	{"Keys/TimeBucket",
		`SELECT time_bucket('15 minutes', ts) AS a, time_bucket(interval '1 hour', ts) AS b, time_bucket('1 day'::interval, ts) AS c, time_bucket(CAST('1 week' AS interval), ts) AS d, time_bucket('PT30S', ts) AS e, time_bucket('1 month', ts) AS f, time_bucket('1 day 02:00', ts + interval '1 hour') AS g, time_bucket(INTERVAL '90', ts) AS h FROM t GROUP BY 1, 2, 3, 4, 5, 6, 7, 8`,
		`1 a: time_bucket(0mon 0d 900000000us, column "ts")
2 b: time_bucket(0mon 0d 3600000000us, column "ts")
3 c: time_bucket(0mon 1d 0us, column "ts")
4 d: time_bucket(0mon 7d 0us, column "ts")
5 e: time_bucket(0mon 0d 30000000us, column "ts")
6 f: time_bucket(1mon 0d 0us, column "ts")
7 g: time_bucket(0mon 1d 7200000000us, sql "ts + interval '1 hour'")
8 h: time_bucket(0mon 0d 90000000us, column "ts")
from: "t"
group by: 1 2 3 4 5 6 7 8`},
	{"Keys/SqlExpressions",
		`SELECT lower(email), extract(year FROM ts) AS y, substring(s FROM 1 FOR 3) AS s3, x::date AS day, coalesce(a, b), CASE WHEN a > 0 THEN 'pos' ELSE 'neg' END, left(name, 1) AS initial, trim(both FROM name) , position('@' IN email) AS at, arr[1] AS first, (c).f, ARRAY[1, 2] AS arr, ROW(a, b) AS r, x IS NULL AS x_null, x BETWEEN 1 AND 2 AS mid, s COLLATE "C" AS sc, current_date, date '2024-01-01' AS d0, count(*) FROM t GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18`,
		`1 lower: sql "lower(email)"
2 y: sql "extract(year FROM ts)"
3 s3: sql "substring(s FROM 1 FOR 3)"
4 day: sql "x::date"
5 coalesce: sql "coalesce(a, b)"
6 case: sql "CASE WHEN a > 0 THEN 'pos' ELSE 'neg' END"
7 initial: sql "left(name, 1)"
8 btrim: sql "trim(both FROM name)"
9 at: sql "position('@' IN email)"
10 first: sql "arr[1]"
11 f: sql "(c).f"
12 arr: sql "ARRAY[1, 2]"
13 r: sql "ROW(a, b)"
14 x_null: sql "x IS NULL"
15 mid: sql "x BETWEEN 1 AND 2"
16 sc: sql "s COLLATE \"C\""
17 current_date: sql "current_date"
18 d0: sql "date '2024-01-01'"
19 count: count(*)
from: "t"
group by: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18`},
	{"Keys/DefaultNames",
		`SELECT x::int, (a + b)::int, interval '1 day', CASE WHEN a THEN 1 END, nullif(a, 0), greatest(a, b), trim(leading 'x' FROM s), count(*) FROM t GROUP BY 1, 2, 3, 4, 5, 6, 7`,
		`1 x: sql "x::int"
2 int4: sql "(a + b)::int"
3 interval: sql "interval '1 day'"
4 case: sql "CASE WHEN a THEN 1 END"
5 nullif: sql "nullif(a, 0)"
6 greatest: sql "greatest(a, b)"
7 ltrim: sql "trim(leading 'x' FROM s)"
8 count: count(*)
from: "t"
group by: 1 2 3 4 5 6 7`},
	{"Aliases/Forms",
		`SELECT k AS key, count(*) n, sum(x) total, max(x) AS "Max", min(x) AS from, avg(x) AS "select" FROM t GROUP BY key`,
		`1 key: column "k"
2 n: count(*)
3 total: sum(column "x")
4 Max: max(column "x")
5 from: min(column "x")
6 select: avg(column "x")
from: "t"
group by: 1`},
	{"Aliases/KeywordNames",
		`SELECT k AS month, count(*) AS day, sum(x) AS year FROM t GROUP BY month`,
		`1 month: column "k"
2 day: count(*)
3 year: sum(column "x")
from: "t"
group by: 1`},
	{"From/Forms",
		`SELECT count(*) FROM "My Schema"."My Table" AS "T"`,
		`1 count: count(*)
from: "My Schema"."My Table" AS "T"`},
	{"From/Schema",
		`SELECT count(*) FROM analytics.events e`,
		`1 count: count(*)
from: "analytics"."events" AS "e"`},
	{"Where/TextKept",
		`SELECT k, count(*) FROM t WHERE status IN ('a', 'b') AND ts >= '2024-01-01'::date AND name LIKE 'x\_%' ESCAPE '\' AND a IS DISTINCT FROM b AND ts AT TIME ZONE 'UTC' > now() - interval '1 day' AND id = ANY('{1,2}'::int[]) AND NOT deleted GROUP BY k`,
		`1 k: column "k"
2 count: count(*)
from: "t"
where: status IN ('a', 'b') AND ts >= '2024-01-01'::date AND name LIKE 'x\_%' ESCAPE '\' AND a IS DISTINCT FROM b AND ts AT TIME ZONE 'UTC' > now() - interval '1 day' AND id = ANY('{1,2}'::int[]) AND NOT deleted
group by: 1`},
	{"Groupby/Positions",
		`SELECT a, b, count(*) FROM t GROUP BY 2, 1`,
		`1 a: column "a"
2 b: column "b"
3 count: count(*)
from: "t"
group by: 2 1`},
	{"Groupby/Aliases",
		`SELECT lower(email) AS e, date_trunc('month', ts) AS m, count(*) FROM t GROUP BY m, e`,
		`1 e: sql "lower(email)"
2 m: date_trunc(month, column "ts")
3 count: count(*)
from: "t"
group by: 2 1`},
	{"Groupby/Expressions",
		`SELECT lower(email), date_trunc('month',ts), count(*) FROM t GROUP BY LOWER( Email ), (DATE_TRUNC( 'month' , "ts" ))`,
		`1 lower: sql "lower(email)"
2 date_trunc: date_trunc(month, column "ts")
3 count: count(*)
from: "t"
group by: 1 2`},
	{"Groupby/StringValues",
		`SELECT coalesce(s, 'none') AS s, count(*) FROM t GROUP BY coalesce(s, E'none')`,
		`1 s: sql "coalesce(s, 'none')"
2 count: count(*)
from: "t"
group by: 1`},
	{"Groupby/Duplicates",
		`SELECT k, count(*) FROM t GROUP BY 1, k, "k"`,
		`1 k: column "k"
2 count: count(*)
from: "t"
group by: 1`},
	{"Groupby/GlobalAggregate",
		`SELECT count(*), sum(x) AS total FROM t WHERE x > 0`,
		`1 count: count(*)
2 total: sum(column "x")
from: "t"
where: x > 0`},
	{"Groupby/KeysOnly",
		`SELECT k FROM t GROUP BY k`,
		`1 k: column "k"
from: "t"
group by: 1`},
}

// TestParse parses parseTests, then checks each Query's invariants and
// that its String parses back to the same.
func TestParse(t *testing.T) {
	t.Parallel()
	for _, tt := range parseTests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			q, err := rollup.Parse(tt.sql)
			if err != nil {
				t.Fatal(err)
			}
			if got := dump(q); got != tt.want {
				t.Errorf("Parse(%s)\n--- got\n%s\n--- want\n%s", tt.sql, got, tt.want)
			}
			checkQuery(t, q)
		})
	}
}

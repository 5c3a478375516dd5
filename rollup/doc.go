// Package rollup reads declarative rollups: the subset of PostgreSQL's
// SELECT that one pass of mr computes, as users type it for mr rollup.
//
//	SELECT customer_id, date_trunc('month', created_at) AS month,
//	       count(*) AS orders, sum(total) AS total,
//	       approx_count_distinct(status) AS statuses, approx_quantile(total, 0.99) AS p99
//	FROM orders WHERE status <> 'void' GROUP BY 1, 2
//
// Parse turns one such statement into a Query, whose pieces of SQL are
// slices of the user's text, so that what the source computes is exactly
// what the user wrote (spelling, quoting, casts). Its errors are
// *SyntaxError values that name the part of the query they are about and
// say what to do.
//
// # The statement
//
//	SELECT item [, item]… FROM table [WHERE condition] [GROUP BY entry [, entry]…] [;]
//	item:  expression [[AS] name]
//	table: name | schema.name, either part "quoted" or not, [[AS] alias]
//
// Each item is a key or an aggregate. An aggregate item holds an
// aggregate call; every other item is a key. Anything else a SELECT may
// have is an error that points at it: HAVING, ORDER BY, LIMIT, OFFSET,
// FETCH, WINDOW, UNION, INTERSECT, EXCEPT, SELECT DISTINCT, SELECT *,
// WITH, INTO, FOR UPDATE, joins, several tables, subqueries anywhere,
// functions in FROM, window functions (OVER), FILTER, WITHIN GROUP,
// ORDER BY among an aggregate's arguments, parameters ($1), GROUPING
// SETS, ROLLUP, CUBE, and a second statement.
//
// # Keys
//
// A key is computed for each row, and the keys of a rollup are its output
// table's primary key. Parse gives each the Key type that tells who
// computes it:
//
//   - *Column, a plain column reference: a name, unquoted or "quoted",
//     optionally qualified by the table (orders.total, o.total after
//     FROM orders o).
//   - *DateTrunc, date_trunc('unit', x [, 'time zone']) with literal unit
//     and zone, which mr computes. The units are PostgreSQL's, in any of
//     its spellings ('month', 'Months', 'mon'), stored as TruncUnit.
//   - *TimeBucket, time_bucket(interval, x), which mr computes as
//     TimescaleDB defines it. The interval is a literal: '15 minutes',
//     interval '15 minutes' or '15 minutes'::interval, read as PostgreSQL
//     reads intervals into an Interval of months, days and microseconds;
//     it must be positive, and whole months or no months at all.
//   - *SQL, any other scalar expression (lower(email), x::date,
//     extract(year FROM ts)), which the source computes.
//
// # Aggregates
//
// The aggregates, with names in any case: count(*), count(x),
// count(DISTINCT x), sum, min, max, avg, stddev (= stddev_samp),
// stddev_samp, stddev_pop, variance (= var_samp), var_samp, var_pop,
// corr(y, x), approx_count_distinct(x), approx_quantile(x, q), median(x),
// max_n(x, n) and min_n(x, n). An aggregate's arguments are any scalar
// expressions without aggregates, computed by the source: each is an Arg
// that keeps its text, and its column's name when it is a plain column.
// The literal parameters, approx_quantile's q (from 0 to 1) and max_n's
// and min_n's n (a whole number from 1), are numeric literals, parsed
// into Numbers.
//
// An aggregate item is one call (a *Call), or arithmetic computed from
// the calls once a group is complete: + - * / ^, unary minus,
// parentheses and numeric literals, as in max(v1) - min(v2),
// corr(v1, v2)^2 or sum(a)/count(*) (*Binary, *Unary, *Number). The
// operators keep PostgreSQL's precedence and meaning: ^ is
// left-associative and binds less tightly than unary minus, and / of two
// integer aggregates divides integers. Calls returns an item's calls. A
// column outside a call, nested aggregates and other functions or casts
// over an aggregate (round(avg(x), 2)) are errors. Aggregates that
// PostgreSQL has but mr does not compute (array_agg, string_agg,
// percentile_cont …) are errors that say what to use instead; an
// aggregate PostgreSQL does not know of, such as one a user defined,
// cannot be told from a function, and fails at the source.
//
// # Names
//
// An item's name is its alias, else the name PostgreSQL gives it: a
// column's name, or a function's (count, sum, date_trunc, max_n, and
// case, coalesce … for the expressions PostgreSQL names so), or for a
// cast of an unnamed expression its type's. Where PostgreSQL would name
// the column ?column? (arithmetic, a literal), Parse asks for an alias.
// Names are unique, and at most 63 bytes, PostgreSQL's limit.
//
// # GROUP BY
//
// Each entry names a key item, by position (GROUP BY 1, 2), by its
// expression (GROUP BY lower(email), compared token by token, so white
// space, comments, the case of unquoted names and "quoting" of names
// that need none do not matter, nor outer parentheses), or by its name
// (GROUP BY month). A name that is also a column the query reads is
// ambiguous (PostgreSQL would group by the column) and an error. Every
// key must be grouped and every entry must be a key. A query without
// keys is a global aggregate, and has no GROUP BY. Query.GroupBy holds
// the keys in GROUP BY order.
//
// # Lexing
//
// Parse splits the query as PostgreSQL does, with
// standard_conforming_strings on:
//
//	strings      'it''s'  E'\n'  U&'\0041'  N'…'  B'101'  X'1F'  $$…$$  $tag$…$tag$,
//	             and a string continued by another after a newline
//	identifiers  unquoted (folded to lower case)  "Quoted"  "a""b"  U&"\0041"
//	numbers      1  1.5  .5  4.  1e-3  1_000  0x1F  0o17  0b101
//	operators    a*-1 is a * -1, != is <>
//	casts        x::numeric(12,2)  ts::timestamp with time zone  CAST(x AS int)
//	comments     -- to the end of the line, /* … */, which nest
//
// # Compiling and running
//
// Prepare binds a Query to a source: Query.Input is what the source reads
// (the table, WHERE, and one expression per distinct piece of SQL the
// rows are needed for), Describe checks that SQL at the source and gives
// its types, and Compile turns the query into a *Plan whose Job is an
// ordinary mapreduce job, so a rollup runs, checkpoints, resumes and
// dead-letters like any other:
//
//	Parse(sql) → Query → Input → source.Describe → Compile → Plan.Job → mapreduce.Run
//
// The job's key is the framed key values (a NULL tag, then the value;
// numerics reduced, so that 1.5 and 1.50 are one group, as in SQL) and
// its value a group of aggregate states (package agg). A group holds the
// first row's arguments until a second row meets it in the combiner, so
// most rows cost no states of their own. The job's name is JobName: the
// output table and a hash of the query, so another query into the same
// table is another run.
//
// Keys that mr computes (date_trunc, time_bucket) truncate in UTC unless
// the query names a zone, where PostgreSQL would use the session's
// TimeZone; time_bucket aligns buckets as TimescaleDB does (from Monday
// 2000-01-03, or 2000-01-01 for months). Output columns take the field
// types of package mapreduce: integers are bigint, reals double
// precision, timestamps timestamptz, and max_n and min_n give arrays.
//
// With push-down (Options.PushDown, see PushDownMode) the range queries
// group their rows themselves and return partial aggregates, which become
// the same states; the engine then commits each range whole.
package rollup

// Package benchmarks measures mr end to end and stage by stage, next to
// the alternatives a user would otherwise reach for, in the same run:
//
//	go test ./benchmarks -run '^$' -bench . -benchtime 1x
//	go test ./benchmarks -run '^$' -bench Compare -benchtime 1x        # mr vs SQL vs a Go loop
//	go test ./benchmarks -run '^$' -bench 'Compare|Scaling' -benchtime 1x -timeout 60m -mr.rows10m
//	go test ./benchmarks -run '^$' -bench DBBench -benchtime 1x -timeout 60m -mr.rows10m   # db-benchmark, 10M rows
//	go test ./benchmarks -run '^$' -bench DBBench -benchtime 1x -mr.dbbench.rows 100000    # the same, a smoke run
//	go test ./benchmarks -run '^$' -bench 'DBBench/q[1245]$' -benchtime 1x -timeout 60m -mr.rows10m -mr.dbbench.pushdown off  # without push-down
//
// The suites:
//
//	BenchmarkCompare        mr, one INSERT … SELECT … GROUP BY … ON CONFLICT statement and a
//	                        hand-written row-at-a-time Go loop, on the same PostgreSQL table,
//	                        for a high-cardinality job (daily_rollup) and a low-cardinality
//	                        one (category_day_rollup, registered by this package only)
//	BenchmarkScaling        mr on PostgreSQL at 1M, 3M (and 10M) rows: rows/s and peak heap
//	BenchmarkDailyRollup_*  end to end on SQLite and on PostgreSQL, by worker count
//	BenchmarkSourceRead     sources.Postgres: keyset chunks (ReadChunk) vs one streamed range
//	BenchmarkMapCombine     Map + combine alone, and the engine with no database
//	BenchmarkShuffleWrite   zstd Arrow shuffle files: MB/s and compression ratio
//	BenchmarkShuffleRead
//	BenchmarkSinkUpsert     sinks.Postgres: COPY + upsert per bucket
//	BenchmarkDBBench        mr rollup vs PostgreSQL on the ten group-by questions of db-benchmark
//	                        (H2O.ai's, maintained by DuckDB Labs), q1 … q10, on its G1 table of
//	                        -mr.dbbench.rows rows (default 10,000,000) and K = 100, generated in
//	                        PostgreSQL once per test binary (about 20 s for 10M rows); v3 is
//	                        numeric(9,6), not db-benchmark's double, so that sums and averages are
//	                        exact and compared digit for digit; every answer of mr is checked
//	                        against PostgreSQL's, and TestDBBench_Small checks them on 20,000 rows
//	                        in the normal test run
//
// Cases of a million rows and more skip under -short; the 10,000,000-row
// cases run only with -mr.rows10m. Inputs other than db-benchmark's come
// from internal/eventgen, the generator the tests use (seed 1, one poison payload in 10,000). SQLite
// files are kept in the system's temp directory between runs; PostgreSQL
// tables live in the throwaway cluster of internal/pgtest (or MR_TEST_DSN),
// seeded once per size per test binary and shared by its benchmarks.
package benchmarks
